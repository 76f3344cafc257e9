import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdtempSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileDigestMemo } from '../../../src/lib/packages/digest-memo.ts';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

test('a remembered digest survives a reload, and a rewrite is seen even with its mtime set back', async (t) => {
  const project = mkdtempSync(join(tmpdir(), 'brl-memo-'));
  process.env.BRL_BUILD_DIR = join(project, 'build');
  t.teardown(() => delete process.env.BRL_BUILD_DIR);
  const file = join(project, 'source.c');
  writeFileSync(file, 'aaaa');
  const before = statSync(file);

  const memo = await FileDigestMemo.load(project);
  t.is(await memo.sha256(file), sha256('aaaa'));
  await memo.save(project);

  const reloaded = await FileDigestMemo.load(project);
  t.is(await reloaded.sha256(file), sha256('aaaa'));

  // Same size, same mtime: only ctime (and the content) tell the change.
  writeFileSync(file, 'bbbb');
  utimesSync(file, before.atime, before.mtime);
  t.is(await reloaded.sha256(file), sha256('bbbb'));
});
