import test from 'ava';
import { link, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSegment, keyName, parseKey } from '../../../src/lib/host/datastore/key.ts';
import { createVersionTree, readVersionChain } from '../../../src/lib/host/datastore/layout.ts';
import { COMMIT_LOG, Datastore, DatastoreIntegrityError, NothingToCommitError } from '../../../src/lib/host/datastore/store.ts';
import { writePendingFiles } from '../../../src/lib/host/datastore/pending.ts';
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

test('a commit is checkpointed into live/ files and the log is emptied; its transaction never touched the disk', async (t) => {
  const base = await tempBase(t);
  const versionDir = await createVersionTree(base, '1.0.0');
  const store = await Datastore.open(base);
  await store.writePending('default', flatten({ motd: 'one', updates: { seed: 7 } }, ['settings']));
  t.deepEqual((await readdir(versionDir)).sort(), [COMMIT_LOG, 'live'], 'a pending transaction of this process is held in memory');
  t.deepEqual(store.listTransactions(), ['default']);
  t.deepEqual((await store.commit('default')).sort(), ['settings.motd', 'settings.updates.seed']);
  await store.settle();
  t.deepEqual((await readdir(versionDir)).sort(), [COMMIT_LOG, 'live']);
  t.true(await holdsNoRecord(join(versionDir, COMMIT_LOG)));
  t.is(await readFile(join(versionDir, 'live/settings/motd'), 'utf8'), '"one"');
  t.deepEqual(store.listTransactions(), []);
  const reopened = await Datastore.open(base);
  t.deepEqual(reopened.document(['settings']), { motd: 'one', updates: { seed: 7 } });
  await t.throwsAsync(store.commit('default'), { instanceOf: NothingToCommitError });
});

test('a checkpoint replaces live files by rename, never writing through another link to them', async (t) => {
  const base = await tempBase(t);
  await createVersionTree(base, '1.0.0');
  const store = await Datastore.open(base);
  await store.writePending('a', flatten({ motd: 'first' }, ['settings']));
  await store.commit('a');
  await store.settle();
  const chain = await readVersionChain(base);
  const oldLive = join(chain!.versionDir, 'kept');
  await store.writePending('b', flatten({ ntp: { options: ['x'] } }, ['settings']));
  // Keep a second name for the file the next commit replaces.
  await link(join(chain!.versionDir, 'live/settings/motd'), oldLive);
  await store.writePending('c', flatten({ motd: 'second' }, ['settings']));
  await Promise.all([store.commit('b'), store.commit('c')]);
  await store.settle();
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
  t.deepEqual((await readdir(versionDir)).sort(), [COMMIT_LOG, 'live', 'pending']);
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
  t.deepEqual((await readdir(versionDir)).sort(), [COMMIT_LOG, 'live']);
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
  t.deepEqual(store.listTransactions(), ['bad'], 'the refused transaction stays pending');
});

test('a commit is validated over the merged settings groups it touches, so a conflict between two transactions in one group is refused', async (t) => {
  const base = await tempBase(t);
  await createVersionTree(base, '1.0.0');
  const seen: string[][] = [];
  const store = await Datastore.open(base, {
    validateCommit: (settings) => {
      seen.push(Object.keys(settings).sort());
      const pair = settings.pair as Record<string, unknown> | undefined;
      if (pair?.a !== undefined && pair.b !== undefined) throw new Error('pair.a and pair.b exclude each other');
    },
  });
  await store.writePending('a', flatten({ pair: { a: 1 }, motd: 'one' }, ['settings']));
  await store.commit('a');
  await store.writePending('b', flatten({ pair: { b: 2 } }, ['settings']));
  await t.throwsAsync(store.commit('b'), { message: 'pair.a and pair.b exclude each other' });
  await store.writePending('c', flatten({ ntp: { options: ['iburst'] } }, ['settings']));
  await store.commit('c');
  t.deepEqual(seen, [['motd', 'pair'], ['pair'], ['ntp']], 'each check sees the groups its commit touches, merged with what is committed');
  t.deepEqual(store.document(['settings']), { pair: { a: 1 }, motd: 'one', ntp: { options: ['iburst'] } });
});

// ---- pending transactions ----

test('a transaction written into pending/ before the store opened is read, kept on disk in step with PATCHes, and dropped durably at commit', async (t) => {
  const base = await tempBase(t);
  const versionDir = await createVersionTree(base, '1.0.0');
  const launchDir = join(versionDir, 'pending', 'bottlerocket-launch');
  // What storewolf does before the apiserver starts in its own process.
  await writePendingFiles(launchDir, flatten({ motd: 'default', ntp: { options: ['iburst'] } }, ['settings']));
  const store = await Datastore.open(base);
  t.deepEqual(store.listTransactions(), ['bottlerocket-launch']);
  t.deepEqual([...store.readPending('bottlerocket-launch').values.keys()].sort(), ['settings.motd', 'settings.ntp.options']);
  await store.writePending('bottlerocket-launch', flatten({ motd: 'from user data' }, ['settings']));
  t.is(await readFile(join(launchDir, 'settings/motd'), 'utf8'), '"from user data"', 'a PATCH to it reaches its files too');
  const restarted = await Datastore.open(base);
  t.is(restarted.readPending('bottlerocket-launch').values.get('settings.motd')?.value, 'from user data');

  t.deepEqual((await store.commit('bottlerocket-launch')).sort(), ['settings.motd', 'settings.ntp.options']);
  await store.settle();
  t.deepEqual(await readdir(join(versionDir, 'pending')), [], 'committed, its directory is gone');
  t.deepEqual((await Datastore.open(base)).listTransactions(), [], 'a later start does not commit it again');
  t.deepEqual(store.document(['settings']), { motd: 'from user data', ntp: { options: ['iburst'] } });
});

test('a pending transaction whose file is not JSON is refused alone, naming the file; the store opens', async (t) => {
  const base = await tempBase(t);
  const versionDir = await createVersionTree(base, '1.0.0');
  await writePendingFiles(join(versionDir, 'pending', 'good'), flatten({ motd: 'fine' }, ['settings']));
  const broken = join(versionDir, 'pending', 'broken', 'settings', 'motd');
  await mkdir(join(broken, '..'), { recursive: true });
  await writeFile(broken, '{"half');
  const store = await Datastore.open(base);
  t.deepEqual(store.listTransactions().sort(), ['broken', 'good']);
  t.throws(() => store.readPending('broken'), { instanceOf: DatastoreIntegrityError, message: `Datastore file ${broken} does not hold JSON` });
  await t.throwsAsync(store.commit('broken'), { message: `Datastore file ${broken} does not hold JSON` });
  await store.commit('good');
  t.deepEqual(await store.discardPending('broken'), []);
  t.deepEqual(store.listTransactions(), []);
  await store.settle();
  t.deepEqual(await readdir(join(versionDir, 'pending')), []);
});

test('null in a PATCH drops what the transaction holds below the key and removes the committed keys', async (t) => {
  const base = await tempBase(t);
  await createVersionTree(base, '1.0.0');
  const store = await logOnlyStore(base);
  await commitSettings(store, 'a', { ntp: { options: ['iburst'], 'time-servers': ['a.example'] }, motd: 'kept' });
  await store.writePending('b', flatten({ ntp: { options: ['prefer'] } }, ['settings']));
  await store.writePending('b', [{ segments: ['settings', 'ntp'], name: 'settings.ntp', value: null }]);
  await store.writePending('b', flatten({ ntp: { 'time-servers': ['b.example'] } }, ['settings']));
  const pending = store.readPending('b');
  t.deepEqual([...pending.removals.keys()], ['settings.ntp']);
  t.deepEqual([...pending.values.keys()], ['settings.ntp.time-servers']);
  t.deepEqual((await store.commit('b')).sort(), ['settings.ntp.options', 'settings.ntp.time-servers']);
  t.deepEqual(store.document(['settings']), { ntp: { 'time-servers': ['b.example'] }, motd: 'kept' });
});

// ---- the commit log ----

/** A store whose log is only checkpointed when asked (or at open), so tests see records on disk. */
async function logOnlyStore(base: string): Promise<Datastore> {
  return Datastore.open(base, { idleCheckpointMs: 3_600_000 });
}

async function commitSettings(store: Datastore, tx: string, settings: Record<string, unknown>): Promise<void> {
  await store.writePending(tx, flatten(settings, ['settings']));
  await store.commit(tx);
}

test('an acknowledged commit is in the log before live/: opening after a crash replays it', async (t) => {
  const base = await tempBase(t);
  const versionDir = await createVersionTree(base, '1.0.0');
  const store = await logOnlyStore(base);
  const before = store.stats;
  await commitSettings(store, 'a', { motd: 'logged', updates: { seed: 3 } });
  t.deepEqual(store.stats, { ...before, commits: 1, logWrites: 1, fsyncs: before.fsyncs + 1 }, 'one record, one fdatasync, nothing else');
  t.is((await recordEnds(join(versionDir, COMMIT_LOG))).length, 1);
  t.deepEqual(await readdir(join(versionDir, 'live')), [], 'live/ is written at the checkpoint');
  // Opening again without settle() is what the next start after a SIGKILL does.
  const reopened = await Datastore.open(base);
  t.deepEqual(reopened.document(['settings']), { motd: 'logged', updates: { seed: 3 } });
  t.is(await readFile(join(versionDir, 'live/settings/updates/seed'), 'utf8'), '3');
  t.true(await holdsNoRecord(join(versionDir, COMMIT_LOG)));
});

test('the log is preallocated with zeros: commits write over them and the file keeps its size and blocks', async (t) => {
  const base = await tempBase(t);
  const versionDir = await createVersionTree(base, '1.0.0');
  const logPath = join(versionDir, COMMIT_LOG);
  const store = await Datastore.open(base, { checkpointBytes: 4096, idleCheckpointMs: 3_600_000 });
  const before = await stat(logPath);
  t.is(before.size, 4096 + 64 * 1024);
  for (let index = 0; index < 10; index += 1) await commitSettings(store, `tx${index}`, { motd: `m${index}` });
  const after = await stat(logPath);
  t.is((await recordEnds(logPath)).length, 10);
  t.is(after.size, before.size, 'no size change for fdatasync to journal');
  t.is(after.blocks, before.blocks, 'no block allocation either');
});

test.serial('a lone commit is flushed at once, with no timer between it and its fdatasync', async (t) => {
  const base = await tempBase(t);
  await createVersionTree(base, '1.0.0');
  const store = await logOnlyStore(base);
  await store.writePending('a', flatten({ motd: 'alone' }, ['settings']));
  const armed: boolean[] = [];
  let acknowledged = false;
  const realSetTimeout = globalThis.setTimeout;
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    armed.push(acknowledged);
    return realSetTimeout(...args);
  }) as typeof setTimeout;
  try {
    await store.commit('a');
    acknowledged = true;
  } finally {
    globalThis.setTimeout = realSetTimeout;
  }
  t.false(armed.includes(false), 'no timer was armed before the commit was acknowledged');
  t.is(store.stats.logWrites, 1);
});

test('commits of transactions changed together share one log record and one fdatasync: 32 commits, 1 flush', async (t) => {
  const base = await tempBase(t);
  await createVersionTree(base, '1.0.0');
  const store = await logOnlyStore(base);
  for (let index = 0; index < 32; index += 1) {
    await store.writePending(`tx${index}`, flatten({ kernel: { sysctl: { [`k${index}`]: `${index}` } } }, ['settings']));
  }
  const before = store.stats.fsyncs;
  await Promise.all(Array.from({ length: 32 }, (_, index) => store.commit(`tx${index}`)));
  // The first commit's batch waits for the 31 siblings changed with it, whose commits follow at once.
  t.is(store.stats.commits, 32);
  t.is(store.stats.logWrites, 1);
  t.is(store.stats.fsyncs - before, 1);
  const reopened = await Datastore.open(base);
  t.is(Object.keys((reopened.document(['settings', 'kernel', 'sysctl']))).length, 32);
});

test.serial('commits that arrive while a flush runs share the next one', async (t) => {
  const base = await tempBase(t);
  await createVersionTree(base, '1.0.0');
  // Every flush counts as slow, so each after the first runs on the thread pool and later commits queue behind it.
  const store = await Datastore.open(base, { idleCheckpointMs: 3_600_000, flushOnLoopBelowMs: 0 });
  await commitSettings(store, 'first', { motd: 'first' });
  const before = store.stats.logWrites;
  await store.writePending('lead', flatten({ motd: 'lead' }, ['settings']));
  const lead = store.commit('lead');
  await new Promise((resolve) => setImmediate(resolve));
  t.true(process.getActiveResourcesInfo().includes('FSReqCallback'), 'the lead\'s fdatasync is in flight');
  for (let index = 0; index < 8; index += 1) await store.writePending(`tx${index}`, flatten({ ntp: { 'time-servers': [`${index}.example`] } }, ['settings']));
  await Promise.all([lead, ...Array.from({ length: 8 }, (_, index) => store.commit(`tx${index}`))]);
  t.is(store.stats.logWrites - before, 2, 'the lead\'s record, then one for the eight that came during its flush');
  t.deepEqual(store.document(['settings', 'ntp']), { 'time-servers': ['7.example'] });
});

test.serial('a batch waits for a sibling changed with it only briefly when that sibling is never committed', async (t) => {
  const base = await tempBase(t);
  await createVersionTree(base, '1.0.0');
  const store = await logOnlyStore(base);
  await store.writePending('abandoned', flatten({ motd: 'never committed' }, ['settings']));
  await store.writePending('a', flatten({ updates: { seed: 5 } }, ['settings']));
  const started = performance.now();
  await store.commit('a');
  const waited = performance.now() - started;
  t.true(waited < 200, `waited ${waited.toFixed(1)} ms for the open sibling`);
  t.is(store.stats.logWrites, 1);
  // Once older than the sibling window, the open transaction no longer holds back anyone.
  await new Promise((resolve) => setTimeout(resolve, 10));
  await store.writePending('b', flatten({ updates: { seed: 6 } }, ['settings']));
  const realSetTimeout = globalThis.setTimeout;
  let timers = 0;
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    timers += 1;
    return realSetTimeout(...args);
  }) as typeof setTimeout;
  try {
    await store.commit('b');
  } finally {
    globalThis.setTimeout = realSetTimeout;
  }
  t.is(timers, 0, 'no wait for the stale transaction');
  t.is(store.document(['settings']).motd, undefined);
});

test.serial('a quick flush runs the next on the event loop; after a slow one the next goes to the thread pool', async (t) => {
  const base = await tempBase(t);
  const versionDir = await createVersionTree(base, '1.0.0');
  const logPath = join(versionDir, COMMIT_LOG);
  for (const [threshold, onLoop] of [[60_000, true], [0, false]] as const) {
    const store = await Datastore.open(base, { idleCheckpointMs: 3_600_000, flushOnLoopBelowMs: threshold });
    await commitSettings(store, 'first', { motd: `first ${threshold}` });
    await store.writePending('second', flatten({ motd: `second ${threshold}` }, ['settings']));
    const records = (await recordEnds(logPath)).length;
    const committed = store.commit('second');
    // The batch is cut at the end of this turn. On the loop its record is written and flushed within that turn; on
    // the thread pool the fdatasync is still in flight after it.
    await new Promise((resolve) => setImmediate(resolve));
    t.is(process.getActiveResourcesInfo().includes('FSReqCallback'), !onLoop, `threshold ${threshold} ms`);
    t.is((await recordEnds(logPath)).length, records + 1);
    await committed;
    await store.settle();
  }
});

test('a torn last record was never acknowledged: it is dropped and the records before it kept', async (t) => {
  const base = await tempBase(t);
  const versionDir = await createVersionTree(base, '1.0.0');
  const store = await logOnlyStore(base);
  await commitSettings(store, 'a', { motd: 'kept' });
  await commitSettings(store, 'b', { motd: 'torn', updates: { seed: 9 } });
  const [firstEnd, secondEnd] = (await recordEnds(join(versionDir, COMMIT_LOG))) as [number, number];
  // The second record's bytes as a crash can leave them: its last byte lost, only its start
  // written, or its header page lost while a later page reached the disk; and, for a log of an
  // older brl that appended without preallocating, the file cut inside the record.
  const tears: [string, (log: Buffer) => Buffer][] = [
    ['last byte lost', (log) => log.fill(0, secondEnd - 1, secondEnd)],
    ['only the start written', (log) => log.fill(0, firstEnd + 5, secondEnd)],
    ['header lost, payload written', (log) => log.fill(0, firstEnd, firstEnd + 12)],
    ['file cut inside the record', (log) => log.subarray(0, secondEnd - 1)],
  ];
  for (const [tear, damage] of tears) {
    const copy = await tempBase(t);
    await copyTree(base, copy);
    const copiedLog = join(copy, relativeVersionDir(base, versionDir), COMMIT_LOG);
    await writeFile(copiedLog, damage(await readFile(copiedLog)));
    const reopened = await Datastore.open(copy);
    t.deepEqual(reopened.document(['settings']), { motd: 'kept' }, tear);
    t.true(await holdsNoRecord(copiedLog), `${tear}: the torn tail is gone after the checkpoint`);
  }
  // A file extended with zeros whose data never reached the disk is a torn write too.
  await writeFile(join(versionDir, COMMIT_LOG), Buffer.alloc(64), { flag: 'a' });
  t.deepEqual((await Datastore.open(base)).document(['settings']), { motd: 'torn', updates: { seed: 9 } });
});

test('replaying the log over a tree that already holds it changes nothing (a crash inside a checkpoint)', async (t) => {
  const base = await tempBase(t);
  const versionDir = await createVersionTree(base, '1.0.0');
  const store = await logOnlyStore(base);
  await commitSettings(store, 'a', { motd: 'one', ntp: { options: ['iburst'] }, updates: { seed: 1 } });
  await store.writePending('b', [{ segments: ['settings', 'ntp'], name: 'settings.ntp', value: null }]);
  await store.commit('b');
  await commitSettings(store, 'c', { motd: 'two' });
  const log = await readFile(join(versionDir, COMMIT_LOG));
  const first = await Datastore.open(base);
  const expected = { motd: 'two', updates: { seed: 1 } };
  t.deepEqual(first.document(['settings']), expected);
  // The checkpoint wrote live/ but the crash came before the log was emptied: the same log again.
  await writeFile(join(versionDir, COMMIT_LOG), log);
  const second = await Datastore.open(base);
  t.deepEqual(second.document(['settings']), expected);
  t.deepEqual((await readdir(join(versionDir, 'live/settings'))).sort(), ['motd', 'updates']);
});

test('a damaged record before the end of the log is refused with the log path, and nothing is changed', async (t) => {
  const base = await tempBase(t);
  const versionDir = await createVersionTree(base, '1.0.0');
  const store = await logOnlyStore(base);
  await commitSettings(store, 'a', { motd: 'one' });
  await commitSettings(store, 'b', { motd: 'two' });
  const logPath = join(versionDir, COMMIT_LOG);
  const log = await readFile(logPath);
  log[20] = (log[20] as number) ^ 0xff;
  await writeFile(logPath, log);
  const error = await t.throwsAsync(Datastore.open(base), { instanceOf: DatastoreIntegrityError });
  t.true(error.message.includes(logPath), error.message);
  t.regex(error.message, /at byte 0 \(checksum mismatch\)/);
  t.deepEqual(await readFile(logPath), log, 'the log is left for inspection');
  t.deepEqual(await readdir(join(versionDir, 'live')), []);
});

test('a corrupt live file at start is named with its path and left as it is, log included', async (t) => {
  const base = await tempBase(t);
  const versionDir = await createVersionTree(base, '1.0.0');
  const store = await logOnlyStore(base);
  await commitSettings(store, 'a', { motd: 'one', updates: { seed: 1 } });
  await store.settle();
  await commitSettings(store, 'b', { motd: 'two' });
  const logPath = join(versionDir, COMMIT_LOG);
  const log = await readFile(logPath);
  const corrupt = join(versionDir, 'live/settings/updates/seed');
  await writeFile(corrupt, '{"half');
  const error = await t.throwsAsync(Datastore.open(base), { instanceOf: DatastoreIntegrityError });
  t.is(error.message, `Datastore file ${corrupt} does not hold JSON`);
  t.is(await readFile(corrupt, 'utf8'), '{"half');
  t.deepEqual(await readFile(logPath), log);
  t.is(await readFile(join(versionDir, 'live/settings/motd'), 'utf8'), '"one"');
});

test('the log is checkpointed when it passes its size bound and when commits stop', async (t) => {
  const base = await tempBase(t);
  const versionDir = await createVersionTree(base, '1.0.0');
  const bounded = await Datastore.open(base, { checkpointBytes: 1, idleCheckpointMs: 3_600_000 });
  const boundedAtOpen = bounded.stats.checkpoints;
  await commitSettings(bounded, 'a', { motd: 'bounded' });
  await commitSettings(bounded, 'b', { motd: 'bounded again' });
  await waitFor(() => bounded.stats.checkpoints === boundedAtOpen + 2);
  t.is(await readFile(join(versionDir, 'live/settings/motd'), 'utf8'), '"bounded again"');

  const idle = await Datastore.open(base, { idleCheckpointMs: 20 });
  const atOpen = idle.stats.checkpoints;
  await commitSettings(idle, 'c', { motd: 'idle' });
  t.is(idle.stats.checkpoints, atOpen);
  await waitFor(() => idle.stats.checkpoints === atOpen + 1);
  t.is(await readFile(join(versionDir, 'live/settings/motd'), 'utf8'), '"idle"');
  t.true(await holdsNoRecord(join(versionDir, COMMIT_LOG)));
});

test('a key cannot become the parent of another key in one commit', async (t) => {
  const base = await tempBase(t);
  await createVersionTree(base, '1.0.0');
  const store = await logOnlyStore(base);
  await commitSettings(store, 'a', { motd: 'leaf' });
  await store.writePending('b', [{ segments: ['settings', 'motd', 'below'], name: 'settings.motd.below', value: 'x' }]);
  await t.throwsAsync(store.commit('b'), { message: /settings\.motd holds a value/ });
  t.deepEqual(store.document(['settings']), { motd: 'leaf' });
});

/** Where each record of a commit log ends (frame: magic, payload length, CRC-32, payload). */
async function recordEnds(path: string): Promise<number[]> {
  const bytes = await readFile(path);
  const ends: number[] = [];
  let offset = 0;
  while (offset + 12 <= bytes.length && bytes.readUInt32LE(offset) === 0x574c5242) {
    offset += 12 + bytes.readUInt32LE(offset + 4);
    ends.push(offset);
  }
  return ends;
}

async function holdsNoRecord(path: string): Promise<boolean> {
  return (await readFile(path)).every((byte) => byte === 0);
}

async function waitFor(condition: () => boolean): Promise<void> {
  for (let tries = 0; tries < 500 && !condition(); tries += 1) await new Promise((resolve) => setTimeout(resolve, 10));
}

function relativeVersionDir(base: string, versionDir: string): string {
  return versionDir.slice(base.length + 1);
}

async function copyTree(from: string, to: string): Promise<void> {
  const { cp } = await import('node:fs/promises');
  await cp(from, to, { recursive: true, verbatimSymlinks: true });
}
