import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, ftruncateSync, rmSync, writeSync, readSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';
import {
  guidFromBytes, guidToBytes, readGpt, serializeEntries, withAttributes, writeGpt, writeProtectiveMbr, SECTOR_SIZE,
} from '../../../src/lib/image/gpt.ts';
import { gptForPlan, planDataDisk, planOsDisk, DATA_PARTITION_GUID, PARTITION_TYPE } from '../../../src/lib/image/layout.ts';
import { derivedUuid } from '../../../src/lib/image/ids.ts';
import { setBootEverSucceeded, setTriesLeft } from '../../../src/lib/image/gptprio.ts';

const run = promisify(execFile);
const ids = { sourceDateEpoch: 1700000000, variant: 'test-minimal', arch: 'x86_64' };
const abPlan = planOsDisk({ osImageSizeGiB: 2, dataImageSizeGiB: 1, partitionPlan: 'split', inPlaceUpdates: true });

const tempDirs: string[] = [];
test.after.always(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

function sparseDisk(sizeMiB: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'brl-gpt-'));
  tempDirs.push(dir);
  const path = join(dir, 'disk.img');
  const fd = openSync(path, 'w');
  ftruncateSync(fd, sizeMiB * 1024 * 1024);
  closeSync(fd);
  return path;
}

async function writtenOsDisk(): Promise<string> {
  const path = sparseDisk(abPlan.sizeMiB);
  const table = gptForPlan(abPlan, ids);
  await writeProtectiveMbr(path, table);
  await writeGpt(path, table);
  return path;
}

async function sgdiskInfo(path: string, number: number): Promise<string> {
  return (await run('sgdisk', ['-i', String(number), path])).stdout;
}

test('GUIDs round-trip through the mixed-endian on-disk form', (t) => {
  const bytes = guidToBytes('C12A7328-F81F-11D2-BA4B-00A0C93EC93B');
  t.is(bytes.toString('hex'), '28732ac11ff8d211ba4b00a0c93ec93b');
  t.is(guidFromBytes(bytes), 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b');
});

test('a written Bottlerocket A/B disk passes sgdisk -v with no problems', async (t) => {
  const path = await writtenOsDisk();
  const { stdout } = await run('sgdisk', ['-v', path]);
  t.regex(stdout, /No problems found/);
  t.notRegex(stdout, /Warning|Problem:/i);
});

test('sgdisk sees BOOT-A with gptprio bits, derived GUIDs, names and type GUIDs', async (t) => {
  const path = await writtenOsDisk();
  const bootA = await sgdiskInfo(path, 3);
  t.regex(bootA, /Partition GUID code: 6B636168-7420-6568-2070-6C616E657421/);
  t.regex(bootA, new RegExp(`Partition unique GUID: ${derivedUuid(ids, 'gpt-part-boot-a').toUpperCase()}`));
  t.regex(bootA, /First sector: 20480 /);
  t.regex(bootA, /Last sector: 102399 /);
  t.regex(bootA, /Attribute flags: 0101000000000000/);
  t.regex(bootA, /Partition name: 'BOTTLEROCKET-BOOT-A'/);
  const bootB = await sgdiskInfo(path, 8);
  t.regex(bootB, /Attribute flags: 0000000000000000/);
  t.regex(bootB, /Partition name: 'BOTTLEROCKET-BOOT-B'/);
  const data = await sgdiskInfo(path, 13);
  t.regex(data, new RegExp(`Partition unique GUID: ${DATA_PARTITION_GUID.fallback.toUpperCase()}`));
  t.regex(data, /Partition name: ''/);
  const { stdout } = await run('sgdisk', ['-p', path]);
  t.regex(stdout, new RegExp(`Disk identifier \\(GUID\\): ${derivedUuid(ids, 'gpt-disk-os').toUpperCase()}`));
});

test('readGpt returns exactly what was written, with no problems', async (t) => {
  const path = await writtenOsDisk();
  const result = await readGpt(path);
  t.deepEqual(result.problems, []);
  t.is(result.source, 'primary');
  t.true(result.protectiveMbr);
  t.deepEqual(result.table, gptForPlan(abPlan, ids));
});

test('a damaged primary header is reported and the backup copy is used', async (t) => {
  const path = await writtenOsDisk();
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from([0xff]), 0, 1, SECTOR_SIZE + 40);
  closeSync(fd);
  const result = await readGpt(path);
  t.is(result.source, 'backup');
  t.false(result.primary.valid);
  t.regex(result.problems.join('\n'), /primary GPT: header at LBA 1: header CRC32 is/);
  t.deepEqual(result.table.partitions, gptForPlan(abPlan, ids).partitions);
});

test('a flipped entry byte is reported as an entry array CRC mismatch', async (t) => {
  const path = await writtenOsDisk();
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from([0x42]), 0, 1, 2 * SECTOR_SIZE + 128 * 2 + 60);
  closeSync(fd);
  const result = await readGpt(path);
  t.regex(result.problems.join('\n'), /primary GPT: entry array CRC32 is 0x[0-9a-f]{8}, header says/);
});

test('rewriting attributes updates both copies consistently and sgdisk agrees', async (t) => {
  const path = await writtenOsDisk();
  const { table } = await readGpt(path);
  const updated = withAttributes(withAttributes(table, 8, setTriesLeft(0n, 1)), 12, setBootEverSucceeded(0n, true));
  await writeGpt(path, updated);
  const result = await readGpt(path);
  t.deepEqual(result.problems, []);
  t.is(result.table.partitions.find((p) => p.number === 8)?.attributes, 1n << 52n);
  t.regex(await sgdiskInfo(path, 8), /Attribute flags: 0010000000000000/);
  t.regex(await sgdiskInfo(path, 12), /Attribute flags: 0200000000000000/);
  t.regex((await run('sgdisk', ['-v', path])).stdout, /No problems found/);
  // The backup entry array holds the same bytes as the primary one.
  const fd = openSync(path, 'r');
  const backup = Buffer.alloc(128 * 128);
  readSync(fd, backup, 0, backup.length, Number(updated.backupEntriesLba) * SECTOR_SIZE);
  closeSync(fd);
  t.true(backup.equals(serializeEntries(updated)));
});

test('rewriting the protective MBR keeps boot code in its first 440 bytes', async (t) => {
  const path = await writtenOsDisk();
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.alloc(440, 0xeb), 0, 440, 0);
  closeSync(fd);
  await writeProtectiveMbr(path, gptForPlan(abPlan, ids));
  const sector = Buffer.alloc(512);
  const readFd = openSync(path, 'r');
  readSync(readFd, sector, 0, 512, 0);
  closeSync(readFd);
  t.true(sector.subarray(0, 440).every((byte) => byte === 0xeb));
  t.is(sector[446 + 4], 0xee);
});

test('the split data disk has one DATA-B partition with the preferred GUID', async (t) => {
  const plan = planDataDisk({ osImageSizeGiB: 2, dataImageSizeGiB: 1, partitionPlan: 'split', inPlaceUpdates: true })!;
  const path = sparseDisk(plan.sizeMiB);
  const table = gptForPlan(plan, ids);
  await writeProtectiveMbr(path, table);
  await writeGpt(path, table);
  t.regex((await run('sgdisk', ['-v', path])).stdout, /No problems found/);
  const info = await sgdiskInfo(path, 1);
  t.regex(info, new RegExp(`Partition GUID code: ${PARTITION_TYPE.data.toUpperCase()}`));
  t.regex(info, new RegExp(`Partition unique GUID: ${DATA_PARTITION_GUID.preferred.toUpperCase()}`));
  t.regex(info, /First sector: 2048 .*\n.*Last sector: 2095103 /);
});

test('an open file handle reads and writes the same table as a path', async (t) => {
  const path = await writtenOsDisk();
  const handle = await open(path, 'r+');
  try {
    const viaHandle = await readGpt(handle);
    t.deepEqual(viaHandle.table, (await readGpt(path)).table);
    await writeGpt(handle, withAttributes(viaHandle.table, 3, 0n));
  } finally {
    await handle.close();
  }
  t.regex(await sgdiskInfo(path, 3), /Attribute flags: 0000000000000000/);
});

for (const [title, options] of [
  ['single-bank', { osImageSizeGiB: 2, dataImageSizeGiB: 1, partitionPlan: 'split', inPlaceUpdates: false }],
  ['unified 4 GiB + 2 GiB', { osImageSizeGiB: 4, dataImageSizeGiB: 2, partitionPlan: 'unified', inPlaceUpdates: true }],
] as const) {
  test(`a ${title} disk passes sgdisk -v and keeps BOOT, ROOT, HASH adjacent`, async (t) => {
    const plan = planOsDisk(options);
    const path = sparseDisk(plan.sizeMiB);
    const table = gptForPlan(plan, ids);
    await writeProtectiveMbr(path, table);
    await writeGpt(path, table);
    t.regex((await run('sgdisk', ['-v', path])).stdout, /No problems found/);
    const { stdout } = await run('sgdisk', ['-p', path]);
    t.regex(stdout, /\n\s+3\s+\d+\s+\d+.*BOTTLEROCKET-BOOT-A\n\s+4\s.*BOTTLEROCKET-ROOT-A\n\s+5\s.*BOTTLEROCKET-HASH-A/);
    t.is((await readGpt(path)).problems.length, 0);
  });
}
