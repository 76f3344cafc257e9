import test from 'ava';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { appendToTreeFile, clampTimes, walkTree } from '../../../src/lib/variant/tree.ts';

test('writes into the image tree refuse to follow symlinks out of it', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'brl-tree-'));
  const outside = mkdtempSync(join(tmpdir(), 'brl-outside-'));
  mkdirSync(join(root, 'usr'));
  symlinkSync(outside, join(root, 'usr', 'lib'));
  await t.throwsAsync(appendToTreeFile(root, 'usr/lib/os-release', 'x'), { instanceOf: BrlError, message: /passes through the symlink \/usr\/lib/ });
  symlinkSync(join(outside, 'target'), join(root, 'usr', 'leaf'));
  await t.throwsAsync(appendToTreeFile(root, 'usr/leaf', 'x'), { instanceOf: BrlError, message: /is a symlink/ });
  await t.throwsAsync(appendToTreeFile(root, '../escape', 'x'), { message: /is not inside/ });
  await appendToTreeFile(root, 'usr/file', 'a');
  await appendToTreeFile(root, 'usr/file', 'b');
  t.is(readFileSync(join(root, 'usr', 'file'), 'utf8'), 'ab');
});

test('times newer than the epoch are clamped, older ones kept, symlinks themselves included', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'brl-clamp-'));
  writeFileSync(join(root, 'new'), '');
  writeFileSync(join(root, 'old'), '');
  utimesSync(join(root, 'old'), 1000, 1000);
  symlinkSync('new', join(root, 'link'));
  await clampTimes(root, 5000);
  t.is(lstatSync(join(root, 'new')).mtimeMs, 5000 * 1000);
  t.is(lstatSync(join(root, 'old')).mtimeMs, 1000 * 1000);
  t.is(lstatSync(join(root, 'link')).mtimeMs, 5000 * 1000);
  t.is(lstatSync(root).mtimeMs, 5000 * 1000);
  t.deepEqual((await walkTree(root)).map((entry) => `${entry.kind}:${entry.path}`), ['symlink:link', 'file:new', 'file:old']);
});
