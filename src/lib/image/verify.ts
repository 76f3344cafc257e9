// Checks a disk image end to end: GPT CRCs and copies, the bank's verity tree against its root data, and grub.cfg's root hash.
import { BrlError, ExitCode } from '../core/errors.ts';
import { partitionOffsetBytes, partitionSizeBytes, readGpt } from './gpt.ts';
import { openDiskImage, openImage } from './image-source.ts';
import { type Bank, findRole } from './banks.ts';
import { bootVerityTable } from './inspect.ts';
import { readVeritySuperblock, verifyVerity, VERITY_BLOCK_SIZE } from './verity.ts';

export interface VerifyCheck {
  name: 'gpt' | 'adjacency' | 'verity-superblock' | 'grub-cfg' | 'verity-tree' | 'root-hash';
  ok: boolean;
  detail: string;
}

export interface VerifyReport {
  path: string;
  bank: Bank;
  ok: boolean;
  rootHash?: string;
  dataBlocks?: number;
  /** First data block of ROOT whose content does not match the tree. */
  firstBadDataBlock?: number;
  checks: VerifyCheck[];
}

/** Runs every check and reports each; never throws for a damaged image (see `assertImageVerified`). */
export async function verifyImage(path: string, options: { bank?: Bank } = {}): Promise<VerifyReport> {
  const bank = options.bank ?? 'A';
  const source = await openImage(path);
  try {
    const checks: VerifyCheck[] = [];
    const report: VerifyReport = { path, bank, ok: false, checks };
    const gpt = await readGpt(source.rawPath);
    checks.push(gpt.problems.length === 0
      ? { name: 'gpt', ok: true, detail: 'protective MBR, primary and backup headers and entry CRC32s are valid and agree' }
      : { name: 'gpt', ok: false, detail: gpt.problems.join('; ') });
    const boot = findRole(gpt.table, `BOOT-${bank}`);
    const root = findRole(gpt.table, `ROOT-${bank}`);
    const hash = findRole(gpt.table, `HASH-${bank}`);
    if (!boot || !root || !hash) {
      checks.push({ name: 'verity-superblock', ok: false, detail: `the partition table has no complete bank ${bank} (BOOT, ROOT and HASH partitions)` });
      return finish(report);
    }
    // GRUB's verity table finds ROOT and HASH as PARTNROFF=1 and 2 from the BOOT it booted.
    const adjacent = root.number === boot.number + 1 && hash.number === boot.number + 2;
    checks.push({
      name: 'adjacency',
      ok: adjacent,
      detail: adjacent
        ? `BOOT-${bank}, ROOT-${bank}, HASH-${bank} are partitions ${boot.number}, ${root.number}, ${hash.number}`
        : `BOOT-${bank}, ROOT-${bank}, HASH-${bank} are partitions ${boot.number}, ${root.number}, ${hash.number}; the verity table needs ROOT = BOOT + 1 and HASH = BOOT + 2`,
    });
    const hashRegion = { path: source.rawPath, offset: partitionOffsetBytes(hash) };
    const superblock = readVeritySuperblock(hashRegion);
    if (!superblock) {
      checks.push({ name: 'verity-superblock', ok: false, detail: `HASH-${bank} (partition ${hash.number}) has no dm-verity superblock` });
      return finish(report);
    }
    report.dataBlocks = superblock.dataBlocks;
    const rootBytes = superblock.dataBlocks * VERITY_BLOCK_SIZE;
    const fits = rootBytes <= partitionSizeBytes(root);
    checks.push({
      name: 'verity-superblock',
      ok: fits,
      detail: fits
        ? `format 1, ${superblock.algorithm}, ${superblock.dataBlocks} data blocks, salt ${superblock.salt.toString('hex')}`
        : `superblock covers ${rootBytes} bytes but ROOT-${bank} (partition ${root.number}) holds only ${partitionSizeBytes(root)}`,
    });
    if (!fits) return finish(report);

    const raw = await openDiskImage(source.rawPath);
    const grub = await bootVerityTable(raw, boot, `BOOT-${bank}`).finally(() => raw.close());
    if (typeof grub === 'string') {
      checks.push({ name: 'grub-cfg', ok: false, detail: grub });
    } else {
      const differences: string[] = [];
      if (grub.dataBlocks !== superblock.dataBlocks) differences.push(`data blocks ${grub.dataBlocks} ≠ superblock's ${superblock.dataBlocks}`);
      if (grub.salt !== superblock.salt.toString('hex')) differences.push(`salt ${grub.salt} ≠ superblock's ${superblock.salt.toString('hex')}`);
      if (grub.algorithm !== superblock.algorithm) differences.push(`hash algorithm ${grub.algorithm} ≠ superblock's ${superblock.algorithm}`);
      if (grub.dataBlockSize !== superblock.dataBlockSize || grub.hashBlockSize !== superblock.hashBlockSize) {
        differences.push(`block sizes ${grub.dataBlockSize}/${grub.hashBlockSize} ≠ superblock's ${superblock.dataBlockSize}/${superblock.hashBlockSize}`);
      }
      if (grub.hashStartBlock !== 1) differences.push(`hash start block ${grub.hashStartBlock} ≠ 1`);
      if (grub.dataDevice.partNrOff !== 1 || grub.hashDevice.partNrOff !== 2) {
        differences.push(`ROOT and HASH are PARTNROFF=${grub.dataDevice.partNrOff}/${grub.hashDevice.partNrOff}, not 1/2 from BOOT`);
      }
      checks.push(differences.length === 0
        ? { name: 'grub-cfg', ok: true, detail: `dm-mod.create table in BOOT-${bank}'s /grub/grub.cfg matches the superblock` }
        : { name: 'grub-cfg', ok: false, detail: `BOOT-${bank}'s /grub/grub.cfg: ${differences.join('; ')}` });
    }

    const tree = await verifyVerity({ path: source.rawPath, offset: partitionOffsetBytes(root) }, hashRegion);
    report.rootHash = tree.rootHash;
    if (tree.firstBadDataBlock !== undefined) {
      report.firstBadDataBlock = tree.firstBadDataBlock;
      checks.push({
        name: 'verity-tree',
        ok: false,
        detail: `ROOT-${bank} data block ${tree.firstBadDataBlock} (byte ${partitionOffsetBytes(root) + tree.firstBadDataBlock * VERITY_BLOCK_SIZE} of the disk) does not match HASH-${bank}`,
      });
    } else if (tree.firstBadLevel !== undefined) {
      checks.push({ name: 'verity-tree', ok: false, detail: `HASH-${bank}: ${tree.problems.join('; ')}` });
    } else {
      checks.push({ name: 'verity-tree', ok: true, detail: `all ${superblock.dataBlocks} data blocks of ROOT-${bank} match HASH-${bank}` });
    }
    if (typeof grub !== 'string') {
      checks.push(grub.rootHash === tree.rootHash
        ? { name: 'root-hash', ok: true, detail: `root hash ${tree.rootHash} matches grub.cfg` }
        : { name: 'root-hash', ok: false, detail: `HASH-${bank}'s tree has root hash ${tree.rootHash}, BOOT-${bank}'s grub.cfg expects ${grub.rootHash}` });
    }
    return finish(report);
  } finally {
    await source.close();
  }
}

function finish(report: VerifyReport): VerifyReport {
  report.ok = report.checks.length > 0 && report.checks.every((check) => check.ok);
  return report;
}

/** Throws a verification failure naming every failed check. */
export function assertImageVerified(report: VerifyReport): void {
  if (report.ok) return;
  const failed = report.checks.filter((check) => !check.ok);
  throw new BrlError(`${report.path} failed verification: ${failed.map((check) => `${check.name}: ${check.detail}`).join('; ')}`, {
    exitCode: ExitCode.verifyFailed,
    code: 'IMAGE_VERIFY_FAILED',
    hint: 'the image was modified or built incorrectly; rebuild it or fetch it again',
  });
}
