import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readGpt } from '../../../src/lib/image/gpt.ts';
import { applyUpdate, checkUpdate, revertUpdate } from '../../../src/lib/updog/index.ts';
import { nextBoot, runSignpostCommand, signpostStatus } from '../../../src/lib/signpost/index.ts';
import { BrlError, ExitCode } from '../../../src/lib/core/errors.ts';
import { assertSgdiskClean } from '../../helpers/oracles.ts';
import { activeSetBytes, buildRelease, makeHost, startRepository, type ReleaseImages } from './fixtures.ts';

const fast = { transport: { initialBackoffMs: 5, maxBackoffMs: 20, connectTimeoutMs: 2000, idleTimeoutMs: 2000 } };

let releaseB: ReleaseImages;
test.before(async () => {
  releaseB = await buildRelease('1.1.0');
});

async function partitionBytes(disk: string, name: string, length: number): Promise<Buffer> {
  const { table } = await readGpt(disk);
  const partition = table.partitions.find((p) => p.name === name)!;
  const data = await readFile(disk);
  return data.subarray(Number(partition.firstLba) * 512, Number(partition.firstLba) * 512 + length);
}

test('update writes B into the inactive set, verifiable by veritysetup, and flips the flags', async (t) => {
  const repo = await startRepository([releaseB], {}, { '(1.0.0, 1.1.0)': [] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.0.0');
  const before = await activeSetBytes(host.disk);

  const check = await checkUpdate({ root: host.root, disk: host.disk, ignoreWaves: true, ...fast });
  t.is(check.chosen?.version, '1.1.0');

  const result = await applyUpdate({ root: host.root, disk: host.disk, activate: true, ...fast });
  t.is(result.status, 'activated');
  t.deepEqual(result.bytesWritten, { root: releaseB.root.length, boot: releaseB.boot.length, hash: releaseB.hash.length });
  t.is(await activeSetBytes(host.disk), before, 'set A is byte-for-byte unchanged');
  t.true((await partitionBytes(host.disk, 'BOTTLEROCKET-ROOT-B', releaseB.root.length)).equals(releaseB.root));

  // Independent check: veritysetup verify of ROOT-B against HASH-B with B's root hash.
  const { table } = await readGpt(host.disk);
  const part = (name: string) => table.partitions.find((p) => p.name === name)!;
  const rootB = part('BOTTLEROCKET-ROOT-B');
  const hashB = part('BOTTLEROCKET-HASH-B');
  const rootFile = join(host.dir, 'rootB.img');
  const hashFile = join(host.dir, 'hashB.img');
  const { writeFile } = await import('node:fs/promises');
  await writeFile(rootFile, await partitionBytes(host.disk, 'BOTTLEROCKET-ROOT-B', releaseB.root.length));
  await writeFile(hashFile, await partitionBytes(host.disk, 'BOTTLEROCKET-HASH-B', Number(hashB.lastLba - hashB.firstLba + 1n) * 512));
  t.notThrows(() => execFileSync('veritysetup', ['verify', rootFile, hashFile, releaseB.rootHash], { stdio: 'pipe' }));
  t.truthy(rootB);
  assertSgdiskClean(t, host.disk);

  const status = await signpostStatus({ root: host.root, disk: host.disk });
  t.is(status.nextSet, 'B');
  t.deepEqual(status.sets.find((s) => s.label === 'B')!.flags, { priority: 2, triesLeft: 1, successful: false });

  // Requests carried seed and version, and during the update also target and migrations.
  const targetRequests = repo.server.requests.filter((r) => r.path.startsWith('/targets/'));
  t.true(targetRequests.length >= 4);

  // Migrations and manifest cached with their metadata for the next boot.
  const cachedTargets = await readdir(join(host.root, 'var', 'lib', 'bottlerocket-migrations'));
  t.true(cachedTargets.some((name) => name.endsWith('.manifest.json')));
  const cachedMeta = (await readdir(join(host.root, 'var', 'cache', 'bottlerocket-metadata'))).sort();
  t.deepEqual(cachedMeta, ['1.root.json', '1.snapshot.json', '1.targets.json', 'timestamp.json']);

  // Boot into B, mark it good.
  t.is((await nextBoot({ root: host.root, disk: host.disk })).booted, 'B');
  const done = await runSignpostCommand({ root: host.root, disk: host.disk }, 'mark-successful-boot');
  t.deepEqual(done.sets.find((s) => s.label === 'B')!.flags, { priority: 2, triesLeft: 0, successful: true });
});

test('update-image stages without flipping; update-revert undoes update-apply', async (t) => {
  const repo = await startRepository([releaseB], {}, { '(1.0.0, 1.1.0)': [] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.0.0');
  const staged = await applyUpdate({ root: host.root, disk: host.disk, activate: false, ...fast });
  t.is(staged.status, 'staged');
  t.is(staged.signpost!.nextSet, 'A');
  t.deepEqual(staged.signpost!.sets.find((s) => s.label === 'B')!.flags, { priority: 0, triesLeft: 1, successful: false });
  await runSignpostCommand(host, 'upgrade-to-inactive');
  const reverted = await revertUpdate(host);
  t.is(reverted.nextSet, 'A');
});

test('nothing to do when the host already runs the newest release', async (t) => {
  const repo = await startRepository([releaseB], {}, { '(1.0.0, 1.1.0)': [] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.1.0');
  t.deepEqual(await applyUpdate({ root: host.root, disk: host.disk, activate: true, ...fast }), { status: 'up-to-date' });
  t.is((await checkUpdate({ root: host.root, disk: host.disk, ...fast })).chosen, undefined);
});

test('corrupted target bytes are refused and the inactive set is not marked valid', async (t) => {
  const repo = await startRepository([releaseB], {}, { '(1.0.0, 1.1.0)': [] });
  t.teardown(() => repo.server.close());
  await repo.publish({ corrupt: [releaseB.names.hash] });
  const host = await makeHost(repo, '1.0.0');
  const before = await activeSetBytes(host.disk);
  const error = await t.throwsAsync(applyUpdate({ root: host.root, disk: host.disk, activate: true, ...fast }), { instanceOf: BrlError });
  t.regex(error!.message, /does not match|LZ4|checksum/i);
  const status = await signpostStatus(host);
  t.deepEqual(status.sets.find((s) => s.label === 'B')!.flags, { priority: 0, triesLeft: 0, successful: false });
  t.is(await activeSetBytes(host.disk), before);
  t.is((await nextBoot(host)).booted, 'A');
});

test('a signed release whose root does not match its grub.cfg is written but never marked valid', async (t) => {
  const misbuilt = await buildRelease('1.1.0', { wrongRootHash: true });
  const repo = await startRepository([misbuilt], {}, { '(1.0.0, 1.1.0)': [] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.0.0');
  const error = await t.throwsAsync(applyUpdate({ root: host.root, disk: host.disk, activate: true, ...fast }), { instanceOf: BrlError });
  t.is(error!.exitCode, ExitCode.verifyFailed);
  t.regex(error!.message, /the written set does not verify: root hash of the stored tree is [0-9a-f]{64}, expected [0-9a-f]{64}/);
  t.deepEqual((await signpostStatus(host)).sets.find((s) => s.label === 'B')!.flags, { priority: 0, triesLeft: 0, successful: false });
});

test('an expired timestamp blocks the update before anything is written', async (t) => {
  const repo = await startRepository([releaseB], {}, { '(1.0.0, 1.1.0)': [] });
  t.teardown(() => repo.server.close());
  await repo.publish({ timestampExpiresIn: -60 });
  const host = await makeHost(repo, '1.0.0');
  const disk = await readFile(host.disk);
  const error = await t.throwsAsync(applyUpdate({ root: host.root, disk: host.disk, activate: true, ...fast }), { instanceOf: BrlError });
  t.is(error!.exitCode, ExitCode.verifyFailed);
  t.regex(error!.message, /expired/);
  t.true((await readFile(host.disk)).equals(disk));
});

test('unknown variant and wrong arch are refused with clear messages', async (t) => {
  const repo = await startRepository([releaseB], {}, { '(1.0.0, 1.1.0)': [] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.0.0');
  await t.throwsAsync(applyUpdate({ root: host.root, disk: host.disk, activate: true, variant: 'aws-k8s-1.30', ...fast }),
    { message: /no releases of variant aws-k8s-1\.30 \(it has: test-minimal\)/ });
  const { addUpdate, emptyManifest } = await import('../../../src/lib/update-metadata/index.ts');
  await repo.publish({ manifest: addUpdate(emptyManifest(), { variant: 'test-minimal', arch: 'riscv64', version: '1.1.0', images: releaseB.names }) });
  await t.throwsAsync(checkUpdate({ root: host.root, disk: host.disk, ...fast }), { message: /publishes test-minimal for riscv64 only, not for this host's/ });
});

test('a single-set disk and a disk whose sets differ are refused before writing', async (t) => {
  const repo = await startRepository([releaseB], {}, { '(1.0.0, 1.1.0)': [] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.0.0');
  const { makeAbDisk } = await import('../signpost/fixtures.ts');
  await makeAbDisk(host.disk, { bootMiB: 2, rootMiB: 4, hashMiB: 1, twoSets: false });
  await nextBoot(host);
  await t.throwsAsync(applyUpdate({ root: host.root, disk: host.disk, activate: true, ...fast }), { message: /single partition set/ });
  // A disk whose B set is laid out differently from A.
  await makeAbDisk(host.disk, { bootMiB: 2, rootMiB: 4, hashMiB: 1, rootBMiB: 3 });
  await nextBoot(host);
  const disk = await readFile(host.disk);
  await t.throwsAsync(applyUpdate({ root: host.root, disk: host.disk, activate: true, ...fast }),
    { message: /ROOT-B is 3145728 bytes but ROOT-A is 4194304; this is not a Bottlerocket A\/B layout/ });
  t.true((await readFile(host.disk)).equals(disk));
});

test('a release too large for the partitions is refused before the disk is touched', async (t) => {
  const big = await buildRelease('1.2.0', { rootKiB: 6 * 1024, contentSize: true });
  const repo = await startRepository([big], {}, { '(1.0.0, 1.2.0)': [] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.0.0');
  const disk = await readFile(host.disk);
  const error = await t.throwsAsync(applyUpdate({ root: host.root, disk: host.disk, activate: true, ...fast }), { instanceOf: BrlError });
  t.regex(error!.message, /unpacks to \d+ bytes but ROOT-B holds 4194304; this disk is too small/);
  t.true((await readFile(host.disk)).equals(disk));
});

test('a release too large without a declared size stops at the partition end and stays unbootable', async (t) => {
  const big = await buildRelease('1.2.0', { rootKiB: 6 * 1024 });
  const repo = await startRepository([big], {}, { '(1.0.0, 1.2.0)': [] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.0.0');
  const before = await activeSetBytes(host.disk);
  await t.throwsAsync(applyUpdate({ root: host.root, disk: host.disk, activate: true, ...fast }), { message: /larger than the partition/ });
  t.is(await activeSetBytes(host.disk), before);
  const status = await signpostStatus(host);
  t.false(status.sets.find((s) => s.label === 'B')!.willBoot);
});

test('a dropped connection resumes with Range and the written image is still exact', async (t) => {
  const repo = await startRepository([releaseB], {}, { '(1.0.0, 1.1.0)': [] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.0.0');
  const path = repo.targetPath(releaseB.names.root);
  // The size pre-check (a 15-byte range) meets a 503, then a reset after its bytes; the write is
  // dropped after 5000 bytes and then stalls after 9000 more (the idle timeout ends that attempt).
  repo.server.addFaults(path, { kind: 'status', status: 503 }, { kind: 'drop', bytes: 1000 }, { kind: 'drop', bytes: 5000 }, { kind: 'stall', bytes: 9000 });
  const result = await applyUpdate({ root: host.root, disk: host.disk, activate: true, transport: { ...fast.transport, idleTimeoutMs: 300 } });
  t.is(result.status, 'activated');
  const ranges = repo.server.requestsFor(path).map((r) => r.range ?? 'whole');
  t.deepEqual(ranges, ['bytes=0-14', 'bytes=0-14', 'whole', 'bytes=5000-', 'bytes=14000-']);
  t.true((await partitionBytes(host.disk, 'BOTTLEROCKET-ROOT-B', releaseB.root.length)).equals(releaseB.root));
});

/** A host whose first update run gives up on B's root image after the server sent 6000 bytes of it and stalled. */
async function interruptedUpdate(t: import('ava').ExecutionContext) {
  const repo = await startRepository([releaseB], {}, { '(1.0.0, 1.1.0)': [] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.0.0');
  const path = repo.targetPath(releaseB.names.root);
  // The size pre-check takes its 15 bytes of the first stall; the write gets 6000 bytes, then nothing.
  repo.server.addFaults(path, { kind: 'stall', bytes: 6000 }, { kind: 'stall', bytes: 6000 });
  const given = await t.throwsAsync(applyUpdate({ root: host.root, disk: host.disk, activate: true, transport: { ...fast.transport, idleTimeoutMs: 300, attemptsWithoutProgress: 1 } }), { instanceOf: BrlError });
  t.is(given!.code, 'DOWNLOAD_FAILED');
  t.false((await signpostStatus(host)).sets.find((s) => s.label === 'B')!.willBoot, 'B stays unbootable');
  const partialDir = join(host.root, 'var', 'cache', 'updog', 'partial');
  const sha256 = createHash('sha256').update(releaseB.targets[releaseB.names.root]!).digest('hex');
  t.deepEqual((await readdir(partialDir)).sort(), [`${sha256}.partial`, `${sha256}.partial.json`]);
  const keptPath = join(partialDir, `${sha256}.partial`);
  const keptBytes = (await readFile(keptPath)).length;
  t.true(keptBytes > 0 && keptBytes <= 6000, `${keptBytes} bytes kept`);
  return { repo, host, path, partialDir, keptPath, keptBytes, requestsBefore: repo.server.requestsFor(path).length };
}

test('a download given up mid-way is resumed by the next run from the bytes it kept; the image is exact and nothing stays kept', async (t) => {
  const { repo, host, path, partialDir, keptBytes, requestsBefore } = await interruptedUpdate(t);
  const result = await applyUpdate({ root: host.root, disk: host.disk, activate: true, ...fast });
  t.is(result.status, 'activated');
  const ranges = repo.server.requestsFor(path).slice(requestsBefore).map((r) => r.range ?? 'whole');
  t.deepEqual(ranges, ['bytes=0-14', `bytes=${keptBytes}-`], 'only the rest was asked for');
  t.true((await partitionBytes(host.disk, 'BOTTLEROCKET-ROOT-B', releaseB.root.length)).equals(releaseB.root));
  t.deepEqual(await readdir(partialDir), []);
});

test('kept bytes that no longer hash as recorded (a power cut, a disk error) are not trusted: the next run downloads afresh', async (t) => {
  const { repo, host, path, keptPath, requestsBefore } = await interruptedUpdate(t);
  const altered = await readFile(keptPath);
  altered[100] = altered[100]! ^ 0xff;
  await writeFile(keptPath, altered);
  const result = await applyUpdate({ root: host.root, disk: host.disk, activate: true, ...fast });
  t.is(result.status, 'activated');
  t.deepEqual(repo.server.requestsFor(path).slice(requestsBefore).map((r) => r.range ?? 'whole'), ['bytes=0-14', 'whole']);
  t.true((await partitionBytes(host.disk, 'BOTTLEROCKET-ROOT-B', releaseB.root.length)).equals(releaseB.root));
});

test('a resumed download whose rest is damaged fails, drops the kept bytes, and the run after downloads afresh', async (t) => {
  const { repo, host, path, partialDir, keptBytes } = await interruptedUpdate(t);
  // The size pre-check takes the harmless first fault; the resumed request gets inverted bytes.
  repo.server.addFaults(path, { kind: 'slow-headers', ms: 1 }, { kind: 'wrong-bytes' });
  const damaged = await t.throwsAsync(applyUpdate({ root: host.root, disk: host.disk, activate: true, ...fast }), { instanceOf: BrlError });
  t.is(damaged!.exitCode, ExitCode.verifyFailed, damaged!.message);
  t.deepEqual(await readdir(partialDir), [], 'nothing kept that could fail the next run the same way');
  t.false((await signpostStatus(host)).sets.find((s) => s.label === 'B')!.willBoot);
  const before = repo.server.requestsFor(path).length;
  const result = await applyUpdate({ root: host.root, disk: host.disk, activate: true, ...fast });
  t.is(result.status, 'activated');
  t.deepEqual(repo.server.requestsFor(path).slice(before).map((r) => r.range ?? 'whole'), ['bytes=0-14', 'whole']);
  t.true(keptBytes > 0);
  t.true((await partitionBytes(host.disk, 'BOTTLEROCKET-ROOT-B', releaseB.root.length)).equals(releaseB.root));
});

test('a server that stays down is retried, then reported clearly', async (t) => {
  const repo = await startRepository([releaseB], {}, { '(1.0.0, 1.1.0)': [] });
  const host = await makeHost(repo, '1.0.0');
  await repo.server.close();
  const error = await t.throwsAsync(checkUpdate({ root: host.root, disk: host.disk, ...fast }), { instanceOf: BrlError });
  t.is(error!.exitCode, ExitCode.network);
  t.regex(error!.message, /could not download http:\/\/127\.0\.0\.1:\d+\/metadata\/.*ECONNREFUSED.*\(4 attempts in a row without progress\)/);
});

test('a second updog process is refused while one holds the host lock; the lock goes with its holder, even killed', async (t) => {
  const repo = await startRepository([releaseB], {}, { '(1.0.0, 1.1.0)': [] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.0.0');
  const { spawn } = await import('node:child_process');
  const { once } = await import('node:events').then((events) => events.default);
  const { writeFile } = await import('node:fs/promises');
  const { lockPath, withUpdogLock } = await import('../../../src/lib/updog/index.ts');
  // Another process holds the lock (as a running updog does) until it is killed.
  const lockModule = new URL('../../../src/lib/updog/lock.ts', import.meta.url).href;
  const holder = spawn(process.execPath, ['--input-type=module', '-e', `
    import { withUpdogLock } from ${JSON.stringify(lockModule)};
    setInterval(() => undefined, 60_000);
    await withUpdogLock(${JSON.stringify(host.root)}, () => { process.stdout.write('held\\n'); return new Promise(() => undefined); });
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => holder.kill('SIGKILL'));
  await once(holder.stdout!, 'data');
  const busy = await t.throwsAsync(applyUpdate({ root: host.root, disk: host.disk, activate: true, ...fast }), { instanceOf: BrlError });
  t.is(busy!.code, 'UPDOG_BUSY');
  t.regex(busy!.message, new RegExp(`another updog \\(pid ${holder.pid}\\) is updating this host`));
  // Killed mid-update: its pid file stays behind, but the kernel has released the lock.
  holder.kill('SIGKILL');
  await once(holder, 'exit');
  t.is((await readFile(lockPath(host.root), 'utf8')).trim(), String(holder.pid));
  t.is((await applyUpdate({ root: host.root, disk: host.disk, activate: true, ...fast })).status, 'activated');
  await t.throwsAsync(readFile(lockPath(host.root)), { code: 'ENOENT' });
  // A pid file alone (say, of a process that is alive but no updog) does not hold the lock.
  await writeFile(lockPath(host.root), `${process.pid}\n`);
  t.is(await withUpdogLock(host.root, async () => 'ran'), 'ran');
});
