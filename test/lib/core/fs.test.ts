import test from 'ava';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fsyncDirectory, writeFileAtomic } from '../../../src/lib/core/fs.ts';

test('an atomic write replaces the file whole, and a failed one leaves the old content and no temp file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-fs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'state.json');
  await writeFileAtomic(path, 'old\n');
  await writeFileAtomic(path, 'new\n');
  t.is(readFileSync(path, 'utf8'), 'new\n');
  // A rename onto a non-empty directory fails after the temp file was written and synced.
  const blocked = join(dir, 'blocked');
  mkdirSync(join(blocked, 'inside'), { recursive: true });
  await t.throwsAsync(writeFileAtomic(blocked, 'never\n'));
  t.deepEqual(readdirSync(dir).sort(), ['blocked', 'state.json']);
  t.deepEqual(readdirSync(blocked), ['inside']);
  await t.notThrowsAsync(fsyncDirectory(dir));
});
