// Checks a freshly written set before it may be marked valid: the root and hash partitions must
// form the dm-verity tree whose root hash the new BOOT's grub.cfg will hand to the kernel.
import type { FileHandle } from 'node:fs/promises';
import { BrlError, ExitCode } from '../core/errors.ts';
import { handleReader } from '../image/image-reader.ts';
import { verifyVerity } from '../image/verity.ts';
import { readBootVerityTable, type VerityTable } from '../image/verity-table.ts';

function mismatch(message: string): BrlError {
  return new BrlError(message, {
    hint: 'the written set is left unbootable; run the update again',
    exitCode: ExitCode.verifyFailed,
    code: 'VERITY_MISMATCH',
  });
}

/** Verifies every root block against the written hash tree and the tree's root against grub.cfg. */
export async function verifyWrittenSet(
  disk: string,
  handle: FileHandle,
  partitions: { boot: { offset: number }; root: { offset: number; size: number }; hash: { offset: number; size: number } },
): Promise<VerityTable> {
  const table = await readBootVerityTable(handleReader(handle), partitions.boot.offset, 'the new BOOT partition');
  if (table.dataBlocks * table.dataBlockSize > partitions.root.size) {
    throw mismatch(`grub.cfg expects ${table.dataBlocks} root blocks, more than the ${partitions.root.size}-byte root partition holds`);
  }
  const check = await verifyVerity({ path: disk, offset: partitions.root.offset }, { path: disk, offset: partitions.hash.offset }, { expectedRootHash: table.rootHash });
  const problems = [...check.problems];
  if (check.superblock.dataBlocks !== table.dataBlocks) problems.push(`the hash tree covers ${check.superblock.dataBlocks} blocks, grub.cfg ${table.dataBlocks}`);
  if (check.superblock.salt.toString('hex') !== table.salt) problems.push('the hash tree\'s salt differs from grub.cfg\'s');
  if (problems.length > 0) throw mismatch(`the written set does not verify: ${problems.join('; ')}`);
  return table;
}
