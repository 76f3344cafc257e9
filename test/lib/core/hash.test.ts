import test from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { hashFile, hashStream } from '../../../src/lib/core/hash.ts';

const dir = mkdtempSync(join(tmpdir(), 'brl-hash-'));
// Larger than one 1 MiB read, and not a multiple of it, so chunk boundaries are crossed.
const content = randomBytes(3 * 1024 * 1024 + 12345);
const file = join(dir, 'data.bin');
writeFileSync(file, content);
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** The digest as coreutils computes it, independently of node:crypto. */
function coreutilsDigest(tool: string, path: string): string {
  return execFileSync(tool, [path], { encoding: 'utf8' }).split(' ')[0]!;
}

test('hashFile gives the same sha256 as sha256sum and counts every byte', async (t) => {
  const digest = await hashFile(file);
  t.is(digest.hex, coreutilsDigest('sha256sum', file));
  t.is(digest.bytes, content.length);
});

test('hashFile takes other algorithms (sha512, md5) by name', async (t) => {
  t.is((await hashFile(file, 'sha512')).hex, coreutilsDigest('sha512sum', file));
  t.is((await hashFile(file, 'md5')).hex, coreutilsDigest('md5sum', file));
});

test('hashFile of an empty file is the digest of no bytes', async (t) => {
  const empty = join(dir, 'empty');
  writeFileSync(empty, '');
  t.deepEqual(await hashFile(empty), { hex: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', bytes: 0 });
});

test('hashFile of a missing file rejects with ENOENT', async (t) => {
  const error = await t.throwsAsync(hashFile(join(dir, 'missing')));
  t.is((error as NodeJS.ErrnoException).code, 'ENOENT');
});

test('hashStream stops reading once more than stopAfterBytes have arrived and releases the source', async (t) => {
  let chunksPulled = 0;
  let released = false;
  async function* chunks() {
    try {
      for (let index = 0; index < 100; index++) {
        chunksPulled += 1;
        yield Buffer.alloc(10, index);
      }
    } finally {
      released = true;
    }
  }
  const digest = await hashStream(chunks(), 'sha256', { stopAfterBytes: 25 });
  t.is(chunksPulled, 3);
  t.is(digest.bytes, 30);
  t.true(released);
});

test('hashStream over a readable equals hashFile over the same bytes', async (t) => {
  t.deepEqual(await hashStream(Readable.from([content.subarray(0, 1000), content.subarray(1000)])), await hashFile(file));
});
