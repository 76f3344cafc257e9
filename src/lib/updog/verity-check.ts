// Checks a freshly written set before it may be marked valid: the root and hash partitions must
// form the dm-verity tree whose root hash the new BOOT's grub.cfg will hand to the kernel.
import type { FileHandle } from 'node:fs/promises';
import { BrlError, ExitCode } from '../core/errors.ts';
import { parseDmVerityTable, verifyVerity, type ParsedDmVerityTable } from '../image/verity.ts';
import { readExt4File } from './ext4-read.ts';

function mismatch(message: string): BrlError {
  return new BrlError(message, {
    hint: 'the written set is left unbootable; run the update again',
    exitCode: ExitCode.verifyFailed,
    code: 'VERITY_MISMATCH',
  });
}

/** The verity parameters in the grub.cfg of the BOOT filesystem at `bootOffset` (read natively: hosts have no debugfs). */
export async function readGrubVerityTable(handle: FileHandle, bootOffset: number): Promise<ParsedDmVerityTable> {
  const text = (await readExt4File(handle, bootOffset, '/grub/grub.cfg', 'new BOOT partition')).toString('utf8');
  const table = parseDmVerityTable(text);
  if (!table) throw mismatch('the new BOOT partition\'s /grub/grub.cfg has no dm-verity table (verity 1 … 4096 4096 <blocks> 1 sha256 <hash> <salt>)');
  return table;
}

/** Verifies every root block against the written hash tree and the tree's root against grub.cfg. */
export async function verifyWrittenSet(
  disk: string,
  handle: FileHandle,
  partitions: { boot: { offset: number }; root: { offset: number; size: number }; hash: { offset: number; size: number } },
): Promise<ParsedDmVerityTable> {
  const table = await readGrubVerityTable(handle, partitions.boot.offset);
  if (table.dataBlocks * 4096 > partitions.root.size) {
    throw mismatch(`grub.cfg expects ${table.dataBlocks} root blocks, more than the ${partitions.root.size}-byte root partition holds`);
  }
  const check = await verifyVerity({ path: disk, offset: partitions.root.offset }, { path: disk, offset: partitions.hash.offset }, { expectedRootHash: table.rootHash });
  const problems = [...check.problems];
  if (check.superblock.dataBlocks !== table.dataBlocks) problems.push(`the hash tree covers ${check.superblock.dataBlocks} blocks, grub.cfg ${table.dataBlocks}`);
  if (check.superblock.salt.toString('hex') !== table.salt) problems.push('the hash tree\'s salt differs from grub.cfg\'s');
  if (problems.length > 0) throw mismatch(`the written set does not verify: ${problems.join('; ')}`);
  return table;
}
