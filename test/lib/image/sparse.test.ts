import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SparseFileWriter } from '../../../src/lib/image/sparse.ts';

test('zero blocks become holes while the content and size stay exact', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-sparse-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const data = Buffer.concat([randomBytes(5000), Buffer.alloc(8 * 1024 * 1024), randomBytes(4096), Buffer.alloc(10_000), Buffer.from([1, 0, 0])]);
  // Odd piece sizes so blocks straddle chunk boundaries.
  const pieces: Buffer[] = [];
  for (let at = 0; at < data.length; at += 65_537) pieces.push(data.subarray(at, at + 65_537));
  const path = join(dir, 'disk.img');
  await pipeline(Readable.from(pieces), new SparseFileWriter(path));
  t.true(readFileSync(path).equals(data));
  const info = statSync(path);
  t.is(info.size, data.length);
  t.true(info.blocks * 512 < 1024 * 1024, `allocated ${info.blocks * 512} bytes`);
});

test('a file that ends in zeros still has its full size', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-sparse-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'zeros.img');
  await pipeline(Readable.from([Buffer.alloc(3 * 4096 + 100)]), new SparseFileWriter(path));
  t.is(statSync(path).size, 3 * 4096 + 100);
});
