import test from 'ava';
import { execFile } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { inspectImage } from '../../../src/lib/image/inspect.ts';
import { assertImageVerified, verifyImage } from '../../../src/lib/image/verify.ts';
import { BrlError, ExitCode } from '../../../src/lib/core/errors.ts';
import { buildTestDisk, compressTestDisk, fixtureIds } from './disk-fixture.ts';
import { derivedUuid, veritySalt, verityUuid } from '../../../src/lib/image/ids.ts';
import { bottlerocketVerityTable } from '../../../src/lib/image/verity-table.ts';

const run = promisify(execFile);

function workDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'brl-image-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function flipByte(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  const byte = Buffer.alloc(1);
  readSync(fd, byte, 0, 1, offset);
  byte[0]! ^= 0xff;
  writeSync(fd, byte, 0, 1, offset);
  closeSync(fd);
}

test('the test disk itself is accepted by sgdisk -v and veritysetup verify', async (t) => {
  const dir = workDir(t);
  const disk = await buildTestDisk(dir);
  t.regex((await run('sgdisk', ['-v', disk.path])).stdout, /No problems found/);
  await t.notThrowsAsync(run('veritysetup', ['verify', join(dir, 'root.ext4'), join(dir, 'root.verity'), disk.rootHash]));
});

test('inspect shows partitions with roles, gptprio flags, verity, grub.cfg table and os-release', async (t) => {
  const dir = workDir(t);
  const disk = await buildTestDisk(dir);
  const result = await inspectImage(disk.path);
  t.is(result.format, 'raw');
  t.deepEqual(result.gptProblems, []);
  t.is(result.diskGuid, derivedUuid(fixtureIds, 'gpt-disk-os'));
  t.deepEqual(result.partitions.map((p) => p.role), [
    'BIOS', 'EFI-A', 'BOOT-A', 'ROOT-A', 'HASH-A', 'RESERVED-A', 'EFI-B', 'BOOT-B', 'ROOT-B', 'HASH-B', 'RESERVED-B', 'PRIVATE', 'DATA-A',
  ]);
  const bootA = result.partitions.find((p) => p.role === 'BOOT-A')!;
  t.is(bootA.name, 'BOTTLEROCKET-BOOT-A');
  t.is(bootA.attributes, '0101000000000000');
  t.deepEqual(bootA.gptprio, { priority: 1, triesLeft: 0, successful: true });
  t.deepEqual(result.partitions.find((p) => p.role === 'BOOT-B')!.gptprio, { priority: 0, triesLeft: 0, successful: false });
  t.false(result.partitions.find((p) => p.role === 'PRIVATE')!.bootEverSucceeded);
  t.deepEqual(result.verity, [{
    bank: 'A', dataBlocks: disk.dataBlocks, salt: veritySalt(fixtureIds).toString('hex'), uuid: verityUuid(fixtureIds),
    hashType: 1, algorithm: 'sha256', dataBlockSize: 4096, hashBlockSize: 4096,
  }]);
  t.deepEqual(result.grub, [{ bank: 'A', ...bottlerocketVerityTable({ dataBlocks: disk.dataBlocks, rootHash: disk.rootHash, salt: veritySalt(fixtureIds).toString('hex') }) }]);
  t.is(result.osRelease?.VERSION_ID, '1.26.1');
  t.is(result.osRelease?.VERSION, '1.26.1 (test-minimal)');
});

test('inspect reads a .img.lz4 the same as the raw image, whatever lz4 flags made it', async (t) => {
  const dir = workDir(t);
  const disk = await buildTestDisk(dir);
  const raw = await inspectImage(disk.path);
  // brl's own flags (indexed blocks), plain `lz4 -9` (no content size) and linked blocks (both decoded from the start).
  for (const flags of [['-9', '-B7', '-BI', '--content-size'], ['-9'], ['-B4', '-BD']]) {
    const compressed = await inspectImage(await compressTestDisk(disk, flags));
    t.is(compressed.format, 'lz4');
    t.deepEqual({ ...compressed, path: '', format: 'raw' }, { ...raw, path: '' }, flags.join(' '));
  }
});

test('verify passes an intact image, raw and compressed', async (t) => {
  const dir = workDir(t);
  const disk = await buildTestDisk(dir);
  for (const path of [disk.path, await compressTestDisk(disk)]) {
    const report = await verifyImage(path);
    t.true(report.ok, JSON.stringify(report.checks));
    t.is(report.rootHash, disk.rootHash);
    t.deepEqual(report.checks.map((check) => check.name), ['gpt', 'adjacency', 'verity-superblock', 'grub-cfg', 'verity-tree', 'root-hash']);
    t.notThrows(() => assertImageVerified(report));
  }
});

test('verify names the ROOT-A data block that a flipped byte is in', async (t) => {
  const dir = workDir(t);
  const disk = await buildTestDisk(dir);
  const block = 300;
  flipByte(disk.path, disk.rootOffset + block * 4096 + 17);
  const report = await verifyImage(disk.path);
  t.false(report.ok);
  t.is(report.firstBadDataBlock, block);
  const error = t.throws(() => assertImageVerified(report), { instanceOf: BrlError });
  t.is(error!.exitCode, ExitCode.verifyFailed);
  t.regex(error!.message, /verity-tree: ROOT-A data block 300 \(byte \d+ of the disk\) does not match HASH-A/);
  t.notRegex(error!.message, /gpt:/);
});

test('verify reports a damaged GPT entry array by its CRC', async (t) => {
  const dir = workDir(t);
  const disk = await buildTestDisk(dir);
  flipByte(disk.path, 2 * 512 + 3 * 128 + 60);
  const report = await verifyImage(disk.path);
  const gpt = report.checks.find((check) => check.name === 'gpt')!;
  t.false(gpt.ok);
  t.regex(gpt.detail, /primary GPT: entry array CRC32 is 0x[0-9a-f]{8}, header says 0x[0-9a-f]{8}/);
  t.true(report.checks.filter((check) => check.name !== 'gpt').every((check) => check.ok));
});

test('verify reports a grub.cfg root hash that differs from the tree', async (t) => {
  const dir = workDir(t);
  const disk = await buildTestDisk(dir, { grubRootHash: '0'.repeat(64) });
  const report = await verifyImage(disk.path);
  t.false(report.ok);
  const rootHash = report.checks.find((check) => check.name === 'root-hash')!;
  t.false(rootHash.ok);
  t.is(rootHash.detail, `HASH-A's tree has root hash ${disk.rootHash}, BOOT-A's grub.cfg expects ${'0'.repeat(64)}`);
});

test('verify reports a grub.cfg table whose algorithm, block sizes or ROOT/HASH offsets differ from the superblock and layout', async (t) => {
  const dir = workDir(t);
  const disk = await buildTestDisk(dir, { grubTable: { algorithm: 'sha512', hashBlockSize: 1024, hashDevice: { partUuid: '$boot_uuid', partNrOff: 3 } } });
  const report = await verifyImage(disk.path);
  const grub = report.checks.find((check) => check.name === 'grub-cfg')!;
  t.false(grub.ok);
  t.is(grub.detail, 'BOOT-A\'s /grub/grub.cfg: hash algorithm sha512 ≠ superblock\'s sha256; block sizes 4096/1024 ≠ superblock\'s 4096/4096; ROOT and HASH are PARTNROFF=1/3, not 1/2 from BOOT');
  t.false(report.ok);
});

test('verify names an unreadable grub.cfg table', async (t) => {
  const dir = workDir(t);
  const disk = await buildTestDisk(dir, { grubTable: { dataBlocks: 0 } });
  const grub = (await verifyImage(disk.path)).checks.find((check) => check.name === 'grub-cfg')!;
  t.false(grub.ok);
  t.regex(grub.detail, /^BOOT-A \(partition 3\)'s \/grub\/grub.cfg: dm-verity table "root,,,ro,0 0 verity .*" has data blocks "0", not an integer ≥ 1$/);
});

test('verify of bank B on a fresh image says HASH-B has no superblock', async (t) => {
  const dir = workDir(t);
  const disk = await buildTestDisk(dir);
  const report = await verifyImage(disk.path, { bank: 'B' });
  t.false(report.ok);
  t.regex(report.checks.at(-1)!.detail, /HASH-B \(partition 10\) has no dm-verity superblock/);
});

test('a missing image is a not-found error', async (t) => {
  await t.throwsAsync(inspectImage('/nonexistent/disk.img'), { instanceOf: BrlError, message: /does not exist/ });
});
