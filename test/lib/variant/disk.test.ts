import test from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planOsDisk } from '../../../src/lib/image/layout.ts';
import { compressDiskLz4, compressLz4 } from '../../../src/lib/variant/artifacts.ts';
import { mappedExtents, mergeExtents, writeDisk } from '../../../src/lib/variant/disk.ts';

const dir = mkdtempSync(join(tmpdir(), 'brl-disk-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const ids = { sourceDateEpoch: 1700000000, variant: 'test-disk', arch: 'x86_64' };
const MiB = 1024 * 1024;

function readRange(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, offset);
    return buffer;
  } finally {
    closeSync(fd);
  }
}

test('extents merge when they touch or overlap', (t) => {
  t.deepEqual(mergeExtents([{ offset: 10, length: 5 }, { offset: 0, length: 10 }, { offset: 30, length: 1 }, { offset: 12, length: 10 }]),
    [{ offset: 0, length: 22 }, { offset: 30, length: 1 }]);
});

test('a disk is written sparse at the partition offsets, holes and zero blocks skipped', async (t) => {
  const plan = planOsDisk({ osImageSizeGiB: 1, dataImageSizeGiB: 1, partitionPlan: 'split', inPlaceUpdates: true });
  const root = join(dir, 'root.img');
  // Data, written zeros, a hole, then data again: neither the zeros nor the hole may land on the disk.
  writeFileSync(root, Buffer.concat([randomBytes(MiB), Buffer.alloc(MiB)]));
  truncateSync(root, 5 * MiB);
  appendFileSync(root, randomBytes(8192));
  const mapped = await mappedExtents(root, statSync(root).size);
  t.true(mapped.reduce((sum, extent) => sum + extent.length, 0) <= 2 * MiB + 8192, 'the hole is not mapped');
  const boot = join(dir, 'boot.img');
  writeFileSync(boot, randomBytes(3 * 4096 + 100));
  const disk = join(dir, 'disk.img');
  const written = await writeDisk(disk, plan, ids, { 'ROOT-A': root, 'BOOT-A': boot });
  t.is(written.sizeBytes, 1024 * MiB);
  t.true(statSync(disk).blocks * 512 < 8 * MiB, 'the disk file is sparse');
  const rootStart = 30 * MiB;
  t.deepEqual(readRange(disk, rootStart, 5 * MiB + 8192), readFileSync(root));
  t.deepEqual(readRange(disk, 10 * MiB, statSync(boot).size), readFileSync(boot));
  // Everything outside the extents is zero, and the extents are not much more than the data.
  let position = 0;
  let covered = 0;
  for (const extent of [...written.extents, { offset: written.sizeBytes, length: 0 }]) {
    for (let at = position; at < extent.offset; at += 64 * MiB) {
      const length = Math.min(64 * MiB, extent.offset - at);
      t.true(readRange(disk, at, length).equals(Buffer.alloc(length)), `zeros at ${at}`);
    }
    position = extent.offset + extent.length;
    covered += extent.length;
  }
  t.true(covered < 4 * MiB);
  t.regex(execFileSync('sgdisk', ['-v', disk], { encoding: 'utf8' }), /No problems found/);
});

test('the streamed LZ4 of a disk (zeros made in memory) is byte-identical to lz4 on the file', async (t) => {
  const disk = join(dir, 'small-disk.img');
  writeFileSync(disk, '');
  truncateSync(disk, 24 * MiB);
  const fd = openSync(disk, 'r+');
  const extents = [{ offset: 0, length: 8192 }, { offset: 5 * MiB + 4096, length: 3 * MiB }, { offset: 24 * MiB - 4096, length: 4096 }];
  for (const extent of extents) writeSync(fd, randomBytes(extent.length), 0, extent.length, extent.offset);
  closeSync(fd);
  await compressDiskLz4(disk, { sizeBytes: 24 * MiB, extents }, join(dir, 'streamed.lz4'));
  await compressLz4(disk, join(dir, 'file.lz4'));
  t.deepEqual(readFileSync(join(dir, 'streamed.lz4')), readFileSync(join(dir, 'file.lz4')));
});
