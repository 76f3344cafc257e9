import test from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  formatVerity, readVeritySuperblock, verifyVerity, verityTreeLayout, VERITY_BLOCK_SIZE,
} from '../../../src/lib/image/verity.ts';
import { BrlError } from '../../../src/lib/core/errors.ts';

const run = promisify(execFile);
const salt = Buffer.from('5a'.repeat(32), 'hex');
const uuid = '0e2d8c4b-4f7a-4c1e-9a3b-2f6d1c0b9e8a';

function workDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'brl-verity-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A data file of `blocks` 4 KiB blocks: sparse, with random content in a spread of blocks. */
function dataFile(dir: string, blocks: number): string {
  const path = join(dir, 'data.img');
  const fd = openSync(path, 'w');
  ftruncateSync(fd, blocks * VERITY_BLOCK_SIZE);
  const filled = Math.min(blocks, 512);
  for (let index = 0; index < filled; index++) {
    const block = Math.floor((index * blocks) / filled);
    writeSync(fd, randomBytes(VERITY_BLOCK_SIZE), 0, VERITY_BLOCK_SIZE, block * VERITY_BLOCK_SIZE);
  }
  closeSync(fd);
  return path;
}

async function veritysetupFormat(dataPath: string, hashPath: string): Promise<string> {
  const { stdout } = await run('veritysetup', [
    'format', '--format', '1', '--hash', 'sha256', '--data-block-size', '4096', '--hash-block-size', '4096',
    '--salt', salt.toString('hex'), '--uuid', uuid, dataPath, hashPath,
  ]);
  return /Root hash:\s+([0-9a-f]{64})/.exec(stdout)![1]!;
}

// 1 block (no tree levels), one full hash block, one digest over, a non-power-of-two size, and
// three levels (more than 128² blocks, also split across worker threads).
for (const blocks of [1, 128, 129, 300, 128 * 128 + 77]) {
  test(`hash file and root hash are byte-identical to veritysetup format for ${blocks} data blocks`, async (t) => {
    const dir = workDir(t);
    const data = dataFile(dir, blocks);
    const expectedRoot = await veritysetupFormat(data, join(dir, 'reference.hash'));
    const result = await formatVerity(data, join(dir, 'brl.hash'), { salt, uuid });
    t.is(result.rootHash, expectedRoot);
    t.is(result.dataBlocks, blocks);
    t.is(result.salt, salt.toString('hex'));
    t.true(readFileSync(join(dir, 'brl.hash')).equals(readFileSync(join(dir, 'reference.hash'))));
    t.is(result.hashSize, statSync(join(dir, 'reference.hash')).size);
  });
}

test('single-threaded and multi-threaded level 0 give the same tree', async (t) => {
  const dir = workDir(t);
  const data = dataFile(dir, 40000);
  const one = await formatVerity(data, join(dir, 'one.hash'), { salt, uuid, threads: 1 });
  const many = await formatVerity(data, join(dir, 'many.hash'), { salt, uuid, threads: 3 });
  t.is(one.rootHash, many.rootHash);
  t.true(readFileSync(join(dir, 'one.hash')).equals(readFileSync(join(dir, 'many.hash'))));
});

test('tree levels are stored top level first after the superblock', (t) => {
  t.deepEqual(verityTreeLayout(1), { levels: [], totalBlocks: 1 });
  t.deepEqual(verityTreeLayout(128), { levels: [{ firstBlock: 1, blocks: 1 }], totalBlocks: 2 });
  const layout = verityTreeLayout(129 * 128);
  t.deepEqual(layout.levels.map((level) => [level.firstBlock, level.blocks]), [[4, 129], [2, 2], [1, 1]]);
  t.is(layout.totalBlocks, 1 + 1 + 2 + 129);
});

test('a padded hash file has the partition size and passes veritysetup verify', async (t) => {
  const dir = workDir(t);
  const data = dataFile(dir, 700);
  const hashPath = join(dir, 'hash.img');
  const result = await formatVerity(data, hashPath, { salt, uuid, hashFileSize: 1024 * 1024 });
  t.is(statSync(hashPath).size, 1024 * 1024);
  await t.notThrowsAsync(run('veritysetup', ['verify', data, hashPath, result.rootHash]));
  const superblock = readVeritySuperblock({ path: hashPath });
  t.is(superblock?.uuid, uuid);
  t.is(superblock?.dataBlocks, 700);
  t.true(superblock?.salt.equals(salt));
});

test('a tree that does not fit the hash partition is refused with both sizes', async (t) => {
  const dir = workDir(t);
  const data = dataFile(dir, 300);
  const error = await t.throwsAsync(formatVerity(data, join(dir, 'hash.img'), { salt, uuid, hashFileSize: 8192 }), { instanceOf: BrlError });
  t.regex(error!.message, /needs 20480 bytes but the hash partition holds 8192/);
});

test('data that is not whole 4 KiB blocks is refused', async (t) => {
  const dir = workDir(t);
  writeFileSync(join(dir, 'odd.img'), Buffer.alloc(5000));
  await t.throwsAsync(formatVerity(join(dir, 'odd.img'), join(dir, 'hash.img'), { salt, uuid }), { instanceOf: BrlError, message: /5000 bytes/ });
});

test('verifyVerity accepts an intact tree and names the first changed data block', async (t) => {
  const dir = workDir(t);
  const blocks = 20000;
  const data = dataFile(dir, blocks);
  const hashPath = join(dir, 'hash.img');
  const { rootHash } = await formatVerity(data, hashPath, { salt, uuid });
  const intact = await verifyVerity({ path: data }, { path: hashPath }, { expectedRootHash: rootHash });
  t.true(intact.ok);
  t.is(intact.rootHash, rootHash);
  for (const block of [17000, 5]) {
    const fd = openSync(data, 'r+');
    writeSync(fd, Buffer.from([0x99]), 0, 1, block * VERITY_BLOCK_SIZE + 123);
    closeSync(fd);
  }
  const broken = await verifyVerity({ path: data }, { path: hashPath }, { expectedRootHash: rootHash });
  t.false(broken.ok);
  t.is(broken.firstBadDataBlock, 5);
  t.regex(broken.problems.join('\n'), /data block 5 \(byte 20480\)/);
  const oracle = await run('veritysetup', ['verify', data, hashPath, rootHash]).catch((error: unknown) => error);
  t.true(oracle instanceof Error);
});

test('verifyVerity reads data and hash at offsets inside a larger file and reports a wrong root hash', async (t) => {
  const dir = workDir(t);
  const data = dataFile(dir, 200);
  const hashPath = join(dir, 'hash.img');
  const { rootHash } = await formatVerity(data, hashPath, { salt, uuid });
  const disk = join(dir, 'disk.img');
  const dataOffset = 1024 * 1024;
  const hashOffset = 3 * 1024 * 1024;
  const fd = openSync(disk, 'w');
  ftruncateSync(fd, 4 * 1024 * 1024);
  writeSync(fd, readFileSync(data), 0, 200 * VERITY_BLOCK_SIZE, dataOffset);
  writeSync(fd, readFileSync(hashPath), 0, statSync(hashPath).size, hashOffset);
  closeSync(fd);
  const good = await verifyVerity({ path: disk, offset: dataOffset }, { path: disk, offset: hashOffset }, { expectedRootHash: rootHash });
  t.true(good.ok);
  const wrong = await verifyVerity({ path: disk, offset: dataOffset }, { path: disk, offset: hashOffset }, { expectedRootHash: 'ab'.repeat(32) });
  t.false(wrong.ok);
  t.regex(wrong.problems.join('\n'), new RegExp(`root hash of the stored tree is ${rootHash}, expected abab`));
});

test('verifyVerity refuses data shorter than the superblock says, naming both ends', async (t) => {
  const dir = workDir(t);
  const data = dataFile(dir, 20000);
  const hashPath = join(dir, 'hash.img');
  await formatVerity(data, hashPath, { salt, uuid });
  truncateSync(data, 15000 * VERITY_BLOCK_SIZE);
  const error = await t.throwsAsync(verifyVerity({ path: data }, { path: hashPath }, { threads: 2 }), { instanceOf: BrlError });
  t.regex(error!.message, /ends at byte 61440000, before the 20000 data blocks the verity superblock covers \(byte 81920000\)/);
});
