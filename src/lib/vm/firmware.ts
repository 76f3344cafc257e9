// Firmware for x86_64 VMs from Debian's ovmf and seabios packages; each UEFI VM gets its own VARS copy.
import { copyFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';

export type Firmware = 'uefi' | 'bios';

export interface FirmwareFiles {
  firmware: Firmware;
  /** OVMF's code (read-only pflash) or SeaBIOS's image. */
  code: string;
  /** OVMF's variable store template, copied per VM so no VM changes another's boot entries. */
  varsTemplate?: string;
}

export const ovmfDir = '/usr/share/OVMF';
export const seabiosDir = '/usr/share/seabios';

export function firmwareFiles(firmware: Firmware, dirs: { ovmf?: string; seabios?: string } = {}): FirmwareFiles {
  const files: FirmwareFiles =
    firmware === 'uefi'
      ? { firmware, code: join(dirs.ovmf ?? ovmfDir, 'OVMF_CODE_4M.fd'), varsTemplate: join(dirs.ovmf ?? ovmfDir, 'OVMF_VARS_4M.fd') }
      : { firmware, code: join(dirs.seabios ?? seabiosDir, 'bios-256k.bin') };
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

/** The VM's own copy of the UEFI variable store. */
export async function privateVars(files: FirmwareFiles, stateDir: string): Promise<string | undefined> {
  if (files.varsTemplate === undefined) return undefined;
  const vars = join(stateDir, 'OVMF_VARS.fd');
  await copyFile(files.varsTemplate, vars);
  return vars;
}
