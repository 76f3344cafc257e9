// A Secure Boot host's check of an update's BOOT before anything is written: the image is fetched whole into memory, its GRUB signatures verified with the running image's key, and those same bytes are what gets written.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BrlError, ExitCode, errnoCode, fileError } from '../core/errors.ts';
import { bufferReader } from '../image/image-reader.ts';
import { imageGrubKeyPath, verifyBootSignatures } from '../secure-boot/boot-signatures.ts';
import { readPublicKey, type OpenPgpPublicKey } from '../secure-boot/openpgp.ts';
import { decodeLz4Parallel } from './lz4-parallel.ts';
import type { UpdateRepository } from './repository.ts';

/**
 * The GRUB key the running image carries (`imageGrubKeyPath` below `root`), or undefined on an
 * image without one (an unsigned development image), which updates without the check.
 */
export async function runningGrubKey(root: string): Promise<OpenPgpPublicKey | undefined> {
  const path = join(root, imageGrubKeyPath);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw fileError(error, path, { what: 'the running image\'s GRUB key' }) ?? error;
  }
  return readPublicKey(bytes, path);
}

/**
 * The decoded BOOT image of target `name`, refused (`BOOT_IMAGE_TOO_LARGE`) when its download or
 * its content is larger than the `partitionSize`-byte BOOT partition, and (`BAD_SIGNATURE`,
 * `UNSIGNED_BOOT_FILE`, …) unless grub.cfg and every file it loads verify with `key`.
 */
export async function fetchVerifiedBootImage(
  repository: UpdateRepository, name: string, partitionSize: number, key: OpenPgpPublicKey, partialDir: string,
): Promise<Buffer> {
  const tooLarge = (what: string) =>
    new BrlError(`${name}: ${what} is larger than the ${partitionSize}-byte BOOT partition`, {
      hint: 'a BOOT image must fit its partition; the release was built for a larger os-image-size-gib',
      exitCode: ExitCode.conflict,
      code: 'BOOT_IMAGE_TOO_LARGE',
    });
  const { length } = await repository.targetInfo(name);
  if (length > partitionSize) throw tooLarge(`the signed target (${length} bytes)`);
  const image = Buffer.alloc(partitionSize);
  let filled = 0;
  for await (const block of decodeLz4Parallel(repository.streamTarget(name, { partialDir }), { decoders: 1 })) {
    if (filled + block.length > partitionSize) throw tooLarge('the decoded image');
    // The decoder reuses its block buffers: copy each out before asking for the next.
    block.copy(image, filled);
    filled += block.length;
  }
  const decoded = image.subarray(0, filled);
  await verifyBootSignatures(bufferReader(decoded), 0, key, `the update's BOOT image ${name}`, partitionSize);
  return decoded;
}
