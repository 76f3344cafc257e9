// Firmware for x86_64 VMs from Debian's ovmf and seabios packages; each UEFI VM gets its own VARS copy.
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { enrolledVariableStore, secureBootVariables } from '../secure-boot/efi-variables.ts';
import type { FirmwareCertificates } from '../secure-boot/key-set.ts';

export type Firmware = 'uefi' | 'bios';

export interface FirmwareFiles {
  firmware: Firmware;
  /** OVMF's code (read-only pflash) or SeaBIOS's image. */
  code: string;
  /** OVMF's variable store template, copied per VM so no VM changes another's boot entries. */
  varsTemplate?: string;
  /** OVMF's Secure Boot build: it keeps its variables in SMM, so QEMU needs SMM and a secure flash. */
  secureBoot: boolean;
}

export const ovmfDir = '/usr/share/OVMF';
export const seabiosDir = '/usr/share/seabios';

export function firmwareFiles(firmware: Firmware, dirs: { ovmf?: string; seabios?: string } = {}, secureBoot = false): FirmwareFiles {
  if (secureBoot && firmware !== 'uefi') {
    throw new BrlError('Secure Boot needs UEFI firmware', { hint: 'drop --firmware bios, or --secure-boot', exitCode: ExitCode.usage, code: 'USAGE' });
  }
  const ovmf = dirs.ovmf ?? ovmfDir;
  const files: FirmwareFiles =
    firmware === 'uefi'
      ? { firmware, code: join(ovmf, secureBoot ? 'OVMF_CODE_4M.secboot.fd' : 'OVMF_CODE_4M.fd'), varsTemplate: join(ovmf, 'OVMF_VARS_4M.fd'), secureBoot }
      : { firmware, code: join(dirs.seabios ?? seabiosDir, 'bios-256k.bin'), secureBoot: false };
  for (const path of [files.code, files.varsTemplate]) {
    if (path !== undefined && !existsSync(path)) {
      const pkg = firmware === 'uefi' ? 'ovmf' : 'seabios';
      throw new BrlError(`${firmware === 'uefi' ? 'UEFI' : 'BIOS'} firmware ${path} is missing`, {
        hint: `install it with: apt-get install ${pkg}`,
        exitCode: ExitCode.missingTool,
        code: 'MISSING_FIRMWARE',
      });
    }
  }
  return files;
}

/**
 * The VM's own copy of the UEFI variable store; with `enrolled`, the empty template with the
 * project's PK, KEK and db written in, so the firmware starts in user mode with Secure Boot on.
 */
export async function privateVars(files: FirmwareFiles, stateDir: string, enrolled?: FirmwareCertificates): Promise<string | undefined> {
  if (files.varsTemplate === undefined) return undefined;
  const vars = join(stateDir, 'OVMF_VARS.fd');
  if (enrolled === undefined) {
    await copyFile(files.varsTemplate, vars);
  } else {
    await writeFile(vars, enrolledVariableStore(await readFile(files.varsTemplate), secureBootVariables(enrolled), files.varsTemplate));
  }
  return vars;
}
