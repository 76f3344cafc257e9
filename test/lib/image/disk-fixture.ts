// Builds a small Bottlerocket-shaped disk (real GPT, ext4 BOOT with grub.cfg, ext4 ROOT, verity HASH) for image tests.
import { execFile } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeGpt, writeProtectiveMbr } from '../../../src/lib/image/gpt.ts';
import { type DiskPlan, gptForPlan, planOsDisk } from '../../../src/lib/image/layout.ts';
import { formatVerity } from '../../../src/lib/image/verity.ts';
import { bottlerocketVerityTable, renderVerityTable, type VerityTable } from '../../../src/lib/image/verity-table.ts';
import { veritySalt, verityUuid } from '../../../src/lib/image/ids.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
export const fixtureIds = { sourceDateEpoch: 1700000000, variant: 'test-minimal', arch: 'x86_64' };

/** Bottlerocket's A/B partition order and types, shrunk to a few MiB each. */
export function miniPlan(): DiskPlan {
  const sizes: Record<string, number> = { BOOT: 4, ROOT: 8 };
  let startMiB = 1;
  const partitions = planOsDisk({ osImageSizeGiB: 2, dataImageSizeGiB: 1, partitionPlan: 'split', inPlaceUpdates: true }).partitions.map((partition) => {
    const sizeMiB = sizes[partition.key.split('-')[0]!] ?? 1;
    const planned = { ...partition, startMiB, sizeMiB };
    startMiB += sizeMiB;
    return planned;
  });
  return { disk: 'os', sizeMiB: startMiB + 1, diskGuidTarget: 'gpt-disk-os', partitions };
}

export interface TestDisk {
  path: string;
  rootHash: string;
  dataBlocks: number;
  rootOffset: number;
  plan: DiskPlan;
}

function place(disk: string, file: string, offset: number): void {
  const fd = openSync(disk, 'r+');
  const data = readFileSync(file);
  writeSync(fd, data, 0, data.length, offset);
  closeSync(fd);
}

/** A raw disk in `dir`; `grubRootHash` and `grubTable` override what grub.cfg's table says. */
export async function buildTestDisk(dir: string, options: { grubRootHash?: string; grubTable?: Partial<VerityTable> } = {}): Promise<TestDisk> {
  const plan = miniPlan();
  const rootTree = join(dir, 'root-tree');
  mkdirSync(join(rootTree, 'usr/lib'), { recursive: true });
  writeFileSync(join(rootTree, 'usr/lib/os-release'), 'NAME=Bottlerocket\nID=bottlerocket\nVERSION="1.26.1 (test-minimal)"\nVARIANT_ID=test-minimal\nVERSION_ID=1.26.1\nBUILD_ID=0123abcd\n');
  writeFileSync(join(rootTree, 'usr/lib/payload'), Buffer.alloc(600 * 1024, 'bottlerocket'));
  const rootImage = join(dir, 'root.ext4');
  await run('mkfs.ext4', ['-q', '-O', '^has_journal', '-b', '4096', '-E', 'root_owner=0:0', '-d', rootTree, rootImage, '6M']);
  const hashImage = join(dir, 'root.verity');
  const verity = await formatVerity(rootImage, hashImage, { salt: veritySalt(fixtureIds), uuid: verityUuid(fixtureIds), hashFileSize: MiB });

  const bootTree = join(dir, 'boot-tree');
  mkdirSync(join(bootTree, 'grub'), { recursive: true });
  const table = renderVerityTable({
    ...bottlerocketVerityTable({ dataBlocks: verity.dataBlocks, rootHash: options.grubRootHash ?? verity.rootHash, salt: verity.salt }),
    ...options.grubTable,
  });
  writeFileSync(join(bootTree, 'grub/grub.cfg'), `set default="0"\nset timeout="0"\nset dm_verity_root="${table}"\n\nmenuentry "Bottlerocket OS 1.26.1" --unrestricted {\n   linux ($root)/vmlinuz\n   boot\n}\n`);
  const bootImage = join(dir, 'boot.ext4');
  await run('mkfs.ext4', ['-q', '-O', '^has_journal', '-d', bootTree, bootImage, '4M']);

  const path = join(dir, 'disk.img');
  const fd = openSync(path, 'w');
  ftruncateSync(fd, plan.sizeMiB * MiB);
  closeSync(fd);
  const gpt = gptForPlan(plan, fixtureIds);
  await writeProtectiveMbr(path, gpt);
  await writeGpt(path, gpt);
  const offsetOf = (key: string): number => plan.partitions.find((partition) => partition.key === key)!.startMiB * MiB;
  place(path, bootImage, offsetOf('BOOT-A'));
  place(path, rootImage, offsetOf('ROOT-A'));
  place(path, hashImage, offsetOf('HASH-A'));
  return { path, rootHash: verity.rootHash, dataBlocks: verity.dataBlocks, rootOffset: offsetOf('ROOT-A'), plan };
}

/** `disk` through the lz4 tool with `flags` (default: plain `lz4 -9`: linked-free blocks, no content size). */
export async function compressTestDisk(disk: TestDisk, flags: readonly string[] = ['-9']): Promise<string> {
  const path = `${disk.path}${flags.join('')}.lz4`;
  await run('lz4', [...flags, '-q', '-f', disk.path, path]);
  return path;
}
