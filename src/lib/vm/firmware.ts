// Firmware from Debian's ovmf and seabios packages (x86_64) and qemu-efi-aarch64 (AAVMF, aarch64);
// each UEFI VM gets its own VARS copy.
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { enrolledVariableStore, secureBootVariables } from '../secure-boot/efi-variables.ts';
import type { FirmwareCertificates } from '../secure-boot/key-set.ts';
import type { Architecture } from '../variant/definition.ts';

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
export const aavmfDir = '/usr/share/AAVMF';

export function firmwareFiles(
  firmware: Firmware,
  dirs: { ovmf?: string; seabios?: string; aavmf?: string } = {},
  secureBoot = false,
  arch: Architecture = 'x86_64',
): FirmwareFiles {
  if (secureBoot && firmware !== 'uefi') {
    throw new BrlError('Secure Boot needs UEFI firmware', { hint: 'drop --firmware bios, or --secure-boot', exitCode: ExitCode.usage, code: 'USAGE' });
  }
  if (arch === 'aarch64' && (firmware !== 'uefi' || secureBoot)) {
    throw new BrlError(`aarch64 VMs boot with AAVMF's UEFI without Secure Boot only, not ${secureBoot ? '--secure-boot' : `--firmware ${firmware}`}`, {
      hint: 'drop --firmware bios and --secure-boot for --arch aarch64', exitCode: ExitCode.usage, code: 'USAGE',
    });
  }
  const ovmf = dirs.ovmf ?? ovmfDir;
  // AAVMF's code and VARS are 64 MiB each, the size of both flash banks of QEMU's virt machine.
  const aavmf = dirs.aavmf ?? aavmfDir;
  const files: FirmwareFiles =
    arch === 'aarch64'
      ? { firmware, code: join(aavmf, 'AAVMF_CODE.fd'), varsTemplate: join(aavmf, 'AAVMF_VARS.fd'), secureBoot: false }
      : firmware === 'uefi'
        ? { firmware, code: join(ovmf, secureBoot ? 'OVMF_CODE_4M.secboot.fd' : 'OVMF_CODE_4M.fd'), varsTemplate: join(ovmf, 'OVMF_VARS_4M.fd'), secureBoot }
        : { firmware, code: join(dirs.seabios ?? seabiosDir, 'bios-256k.bin'), secureBoot: false };
  for (const path of [files.code, files.varsTemplate]) {
    if (path !== undefined && !existsSync(path)) {
      const pkg = arch === 'aarch64' ? 'qemu-efi-aarch64' : firmware === 'uefi' ? 'ovmf' : 'seabios';
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
