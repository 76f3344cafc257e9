// The check GRUB makes at boot, made beforehand on a BOOT filesystem: grub.cfg and every file it loads must carry a valid detached signature by the project's GRUB key.
import { BrlError, ExitCode } from '../core/errors.ts';
import { readExt4File } from '../image/ext4-read.ts';
import type { BlockReader } from '../image/image-reader.ts';
import { verifyDetachedSignature } from './openpgp-verify.ts';
import type { OpenPgpPublicKey } from './openpgp.ts';

/**
 * Where a Secure Boot image's root filesystem holds the GRUB key (the `grub.gpg` embedded in its
 * GRUB), so the running host can check an update's BOOT with it. The root is dm-verity-protected
 * and its root hash sits in the signed grub.cfg, so a key read from here is as trusted as GRUB's.
 */
export const imageGrubKeyPath = '/usr/share/brl/secure-boot/grub.gpg';

const grubConfigPath = '/grub/grub.cfg';

function refused(message: string, code: string, hint: string): BrlError {
  return new BrlError(message, { exitCode: ExitCode.verifyFailed, code, hint });
}

/**
 * The BOOT paths grub.cfg loads: the kernel of each `linux` line and each file of each `initrd`
 * line. Files must be on `($root)` (BOOT itself): anything elsewhere cannot be checked here, and
 * GRUB would refuse it unsigned.
 */
export function grubConfigLoads(config: string, source: string): string[] {
  const paths: string[] = [];
  let kernels = 0;
  for (const line of config.split('\n')) {
    const words = line.trim().split(/\s+/);
    const command = words[0];
    if (command !== 'linux' && command !== 'initrd') continue;
    if (command === 'linux') kernels += 1;
    const files = command === 'linux' ? words.slice(1, 2) : words.slice(1);
    for (const file of files) {
      const onBoot = /^\(\$root\)(\/[^\s()$]+)$/.exec(file);
      if (onBoot === null) {
        throw refused(`${source}: ${grubConfigPath} loads ${file}, which is not a file on BOOT and cannot be checked`, 'UNCHECKABLE_BOOT_FILE',
          'a Secure Boot image loads its kernel and initrd from BOOT (($root)/…) only');
      }
      if (!paths.includes(onBoot[1]!)) paths.push(onBoot[1]!);
    }
  }
  if (kernels === 0) {
    throw refused(`${source}: ${grubConfigPath} loads no kernel`, 'NO_KERNEL', 'BOOT is written by brl build variant; rebuild the release');
  }
  return paths;
}

/**
 * Verifies, against `key`, the signatures GRUB would check when booting the BOOT filesystem at
 * byte `offset` of `reader`: first `/grub/grub.cfg` (nothing in it is trusted before), then each
 * file it loads. Returns the paths verified; throws a `verifyFailed` BrlError naming `source`, the
 * file and the reason: `UNSIGNED_BOOT_FILE` (a file or its `.sig` is missing), `BAD_SIGNATURE`,
 * `BAD_EXT4`. `maxFileBytes` bounds each file read (the partition's size).
 */
export async function verifyBootSignatures(reader: BlockReader, offset: number, key: OpenPgpPublicKey, source: string, maxFileBytes: number): Promise<string[]> {
  const read = async (path: string, why: string): Promise<Buffer> => {
    const bytes = await readExt4File(reader, offset, path, source, { maxBytes: maxFileBytes });
    if (bytes === undefined) {
      throw refused(`${source}: ${path} is missing (${why})`, 'UNSIGNED_BOOT_FILE',
        'every file GRUB loads needs <file>.sig by the project\'s GRUB key; build the release with the same [secure-boot] keys as the running image');
    }
    return bytes;
  };
  const verify = async (path: string, why: string): Promise<Buffer> => {
    const data = await read(path, why);
    const signature = await read(`${path}.sig`, `GRUB would refuse an unsigned ${path}`);
    verifyDetachedSignature(data, signature, key, `${source}: ${path}.sig`);
    return data;
  };
  const config = await verify(grubConfigPath, 'GRUB reads it first');
  const loaded = grubConfigLoads(config.toString('utf8'), source);
  for (const path of loaded) await verify(path, `${grubConfigPath} loads it`);
  return [grubConfigPath, ...loaded];
}
