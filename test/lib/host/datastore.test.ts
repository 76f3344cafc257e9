import test from 'ava';
import { link, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSegment, keyName, parseKey } from '../../../src/lib/host/datastore/key.ts';
import { createVersionTree, readVersionChain } from '../../../src/lib/host/datastore/layout.ts';
import { Datastore, NothingToCommitError } from '../../../src/lib/host/datastore/store.ts';
import { flatten } from '../../../src/lib/host/datastore/tree.ts';

async function tempBase(t: import('ava').ExecutionContext): Promise<string> {
  const base = await mkdtemp(join(tmpdir(), 'brl-ds-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  return base;
}

test('key names: quoted segments hold dots; bad names are refused with the reason', (t) => {
  t.deepEqual(parseKey('settings.kernel.sysctl."vm.max_map_count"'), ['settings', 'kernel', 'sysctl', 'vm.max_map_count']);
  t.is(keyName(['settings', 'kubernetes', 'node-labels', 'my.label']), 'settings.kubernetes.node-labels."my.label"');
  t.throws(() => parseKey(''), { message: /cannot be empty/ });
  t.throws(() => parseKey('a..b'), { message: /empty segment/ });
  t.throws(() => parseKey('a.b.'), { message: /ends with a dot/ });
  t.throws(() => parseKey('a."b.c'), { message: /unbalanced quotes/ });
  t.throws(() => parseKey('a.b c'), { message: /invalid character ' '/ });
  t.throws(() => parseKey(`a.${'x'.repeat(300)}`), { message: /longer than 255 bytes/ });
  t.throws(() => parseKey('a.b', 'meta'), { message: /single segment/ });
  t.is(encodeSegment('vm.max_map_count'), 'vm%2Emax_map_count');
  t.is(encodeSegment('k8s.io/role'), 'k8s%2Eio%2Frole');
});

test('reads a datastore laid out by upstream Bottlerocket (link chain, quoted JSON files, metadata beside keys)', async (t) => {
  const base = await tempBase(t);
  const versionDir = join(base, 'v1.26.1_AbCdEfGhIjKlMnOp');
  await mkdir(join(versionDir, 'live/settings/kernel/sysctl'), { recursive: true });
  await mkdir(join(versionDir, 'live/settings/updates'), { recursive: true });
  await writeFile(join(versionDir, 'live/settings/motd'), '"Welcome to Bottlerocket!"');
  await writeFile(join(versionDir, 'live/settings/kernel/sysctl/vm%2Emax_map_count'), '"262144"');
  await writeFile(join(versionDir, 'live/settings/updates/seed'), '1234');
  await writeFile(join(versionDir, 'live/settings/updates/seed.setting-generator'), '"bork seed"');
  await writeFile(join(versionDir, 'live/settings/motd.affected-services'), '["motd"]');
  await symlink('v1.26.1_AbCdEfGhIjKlMnOp', join(base, 'v1.26.1'));
  await symlink('v1.26.1', join(base, 'v1.26'));
  await symlink('v1.26', join(base, 'v1'));
  await symlink('v1', join(base, 'current'));
  const store = await Datastore.open(base);
  t.is(store.version, '1.26.1');
  t.deepEqual(store.document(['settings']), {
    motd: 'Welcome to Bottlerocket!',
    kernel: { sysctl: { 'vm.max_map_count': '262144' } },
    updates: { seed: 1234 },
  });
  t.is(store.getMetadata('settings.updates.seed', 'setting-generator'), 'bork seed');
  t.deepEqual(store.inheritedMetadata('affected-services', ['settings', 'motd']), ['motd']);
});

test('a commit swaps live atomically: staging and journal are gone and pending is removed', async (t) => {
  const base = await tempBase(t);
  const versionDir = await createVersionTree(base, '1.0.0');
  const store = await Datastore.open(base);
  await store.writePending('default', flatten({ motd: 'one', updates: { seed: 7 } }, ['settings']));
  t.deepEqual((await store.commit('default')).sort(), ['settings.motd', 'settings.updates.seed']);
  await store.settle();
  t.deepEqual((await readdir(versionDir)).sort(), ['live', 'pending']);
  t.deepEqual(await readdir(join(versionDir, 'pending')), []);
  const reopened = await Datastore.open(base);
  t.deepEqual(reopened.document(['settings']), { motd: 'one', updates: { seed: 7 } });
  await t.throwsAsync(store.commit('default'), { instanceOf: NothingToCommitError });
});

test('a commit never writes through a hard link into the previous live tree', async (t) => {
  const base = await tempBase(t);
  await createVersionTree(base, '1.0.0');
  const store = await Datastore.open(base);
  await store.writePending('a', flatten({ motd: 'first' }, ['settings']));
  await store.commit('a');
  const chain = await readVersionChain(base);
  const oldLive = join(chain!.versionDir, 'kept');
  await store.writePending('b', flatten({ ntp: { options: ['x'] } }, ['settings']));
  // Keep a second name for the file the next commit replaces.
  await link(join(chain!.versionDir, 'live/settings/motd'), oldLive);
  await store.writePending('c', flatten({ motd: 'second' }, ['settings']));
  await Promise.all([store.commit('b'), store.commit('c')]);
  t.is(await readFile(oldLive, 'utf8'), '"first"');
  t.is(await readFile(join(chain!.versionDir, 'live/settings/motd'), 'utf8'), '"second"');
});

test('a crash after the journal is written is finished on the next open', async (t) => {
  const base = await tempBase(t);
  const versionDir = await createVersionTree(base, '1.0.0');
  await writeFile(join(versionDir, 'live/x'), '"old"');
  await mkdir(join(versionDir, '.live-next-abc'));
  await writeFile(join(versionDir, '.live-next-abc/x'), '"new"');
  await mkdir(join(versionDir, 'pending/tx1'), { recursive: true });
  await writeFile(join(versionDir, 'pending/tx1/x'), '"new"');
  await writeFile(join(versionDir, '.commit-journal'), JSON.stringify({ next: '.live-next-abc', old: '.live-old-abc', transactions: ['tx1'] }));
  // The crash came between the two renames: live is already moved away.
  await rename(join(versionDir, 'live'), join(versionDir, '.live-old-abc'));
  const store = await Datastore.open(base);
  t.is(store.getLive('x')?.value, 'new');
  t.deepEqual((await readdir(versionDir)).sort(), ['live', 'pending']);
  t.deepEqual(await readdir(join(versionDir, 'pending')), []);
});

test('a staging tree left without a journal is discarded and live is kept', async (t) => {
  const base = await tempBase(t);
  const versionDir = await createVersionTree(base, '1.0.0');
  await writeFile(join(versionDir, 'live/x'), '"old"');
  await mkdir(join(versionDir, '.live-next-zzz'));
  await writeFile(join(versionDir, '.live-next-zzz/x'), '"half"');
  const store = await Datastore.open(base);
  t.is(store.getLive('x')?.value, 'old');
  t.deepEqual(await readdir(versionDir), ['live']);
});

test('a merged result that fails validation is refused and live stays as it was', async (t) => {
  const base = await tempBase(t);
  await createVersionTree(base, '1.0.0');
  const store = await Datastore.open(base, {
    validateCommit: (settings) => {
      if (settings.forbidden !== undefined) throw new Error('forbidden is not allowed');
    },
  });
  await store.writePending('ok', flatten({ motd: 'fine' }, ['settings']));
  await store.writePending('bad', flatten({ forbidden: true }, ['settings']));
  const [ok, bad] = await Promise.allSettled([store.commit('ok'), store.commit('bad')]);
  t.is(ok.status, 'fulfilled');
  t.is(bad.status, 'rejected');
  t.deepEqual(store.document(['settings']), { motd: 'fine' });
  t.deepEqual(await store.listTransactions(), ['bad']);
});
