import test, { type ExecutionContext } from 'ava';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../../src/lib/host/apiclient/main.ts';
import { apiCall } from '../../../src/lib/host/apiclient/request.ts';
import { prepareRoot } from '../../../src/lib/host/boot/prepare-root.ts';
import { readGpt } from '../../../src/lib/image/gpt.ts';
import { decodeGptPrio, type GptPrioFlags } from '../../../src/lib/image/gptprio.ts';
import { ApiServer } from '../../../src/lib/host/apiserver/server.ts';
import { apiRequest } from '../../../src/lib/host/apiclient/request.ts';
import { gptprioNext, nextBoot } from '../../../src/lib/signpost/index.ts';
import { assertSgdiskClean } from '../../helpers/oracles.ts';
import { activeSetBytes, ARCH, buildRelease, makeHost, startRepository, VARIANT, type ReleaseImages } from '../updog/fixtures.ts';
import { startServer } from './_root.ts';

// The apiserver's update actions run the real updog host program (bin/updog, the built CLI) against a
// signed repository on 127.0.0.1 and an A/B disk image; every state the API reports is checked on the disk.
const updog = fileURLToPath(new URL('../../../bin/updog', import.meta.url));

let release: ReleaseImages;
test.before(async () => {
  release = await buildRelease('1.1.0');
});

/** A host running `hostVersion` from set A, its API served, its updog.toml rendered from settings that point at a repository offering 1.1.0. */
async function updateServer(t: ExecutionContext, hostVersion = '1.0.0') {
  const repo = await startRepository([release], {}, { '(1.0.0, 1.1.0)': [] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, hostVersion);
  // The dev variant's settings model, defaults and templates; os-release stays the one naming the host's release.
  await prepareRoot({ root: host.root, variant: 'dev', version: '1.0.0', writeOsRelease: false });
  const started = await startServer(t, { root: host.root, updogCommand: [updog, '--disk', host.disk], osDisk: host.disk });
  const settings = { updates: { 'metadata-base-url': repo.metadataBaseUrl, 'targets-base-url': repo.targetsBaseUrl, 'ignore-waves': true } };
  t.is((await started.call('PATCH', '/settings?tx=updates', settings)).status, 204);
  t.is((await started.call('POST', '/tx/commit_and_apply?tx=updates')).status, 200);
  await started.server.applier.idle();
  t.regex(await readFile(join(host.root, 'etc', 'updog.toml'), 'utf8'), new RegExp(`metadata_base_url = "${repo.metadataBaseUrl}"`));
  const waitIdle = () => started.server.updates.settled();
  return { ...started, repo, host, waitIdle, activeBefore: await activeSetBytes(host.disk) };
}

/** Set B as the disk holds it: whether each partition holds the release's image, its gptprio flags, and the set GRUB boots next. */
async function diskState(disk: string): Promise<{ written: Record<'root' | 'boot' | 'hash', boolean>; flagsB: GptPrioFlags; grubBoots: string }> {
  const { table } = await readGpt(disk);
  const bytes = await readFile(disk);
  const partition = (name: string) => table.partitions.find((p) => p.name === name)!;
  const holds = (name: string, image: Buffer): boolean => {
    const offset = Number(partition(name).firstLba) * 512;
    return bytes.subarray(offset, offset + image.length).equals(image);
  };
  return {
    written: { root: holds('BOTTLEROCKET-ROOT-B', release.root), boot: holds('BOTTLEROCKET-BOOT-B', release.boot), hash: holds('BOTTLEROCKET-HASH-B', release.hash) },
    flagsB: decodeGptPrio(partition('BOTTLEROCKET-BOOT-B').attributes),
    grubBoots: gptprioNext(table, disk).booted.label,
  };
}

const releaseImage = { arch: ARCH, version: '1.1.0', variant: VARIANT };
const allWritten = { root: true, boot: true, hash: true };
const noneWritten = { root: false, boot: false, hash: false };

test('status is 404 until the first refresh, which finds the update the repository offers', async (t) => {
  const { call, waitIdle, root } = await updateServer(t);
  const before = await call('GET', '/updates/status');
  t.is(before.status, 404);
  t.is(before.body, 'Update status is uninitialized, refresh-updates to initialize it');
  t.is((await call('POST', '/actions/refresh-updates')).status, 204);
  await waitIdle();
  const status = JSON.parse((await call('GET', '/updates/status')).body);
  t.is(status.update_state, 'Available', JSON.stringify(status.most_recent_command));
  t.deepEqual(status.available_updates, ['1.1.0']);
  t.deepEqual(status.chosen_update, releaseImage);
  t.deepEqual(status.active_partition, { image: { arch: ARCH, version: '1.0.0', variant: VARIANT }, next_to_boot: true });
  t.is(status.staging_partition, null);
  t.is(status.most_recent_command.cmd_type, 'refresh');
  t.is(status.most_recent_command.cmd_status, 'Success');
  t.regex(status.most_recent_command.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  const onDisk = JSON.parse(await readFile(join(root, 'run/cache/thar-be-updates/status.json'), 'utf8'));
  t.deepEqual(onDisk, status);
});

test('prepare writes set B, activate makes GRUB boot B, deactivate makes it boot A again; set A never changes', async (t) => {
  const { call, waitIdle, host, activeBefore } = await updateServer(t);
  const step = async (path: string) => {
    t.is((await call('POST', path)).status, 204);
    await waitIdle();
    const status = JSON.parse((await call('GET', '/updates/status')).body);
    t.is(status.most_recent_command.cmd_status, 'Success', status.most_recent_command.stderr);
    return status;
  };
  await step('/actions/refresh-updates');
  t.like(await diskState(host.disk), { written: noneWritten, grubBoots: 'A' });

  const staged = await step('/actions/prepare-update');
  t.is(staged.update_state, 'Staged');
  t.deepEqual(staged.staging_partition, { image: releaseImage, next_to_boot: false });
  t.deepEqual(await diskState(host.disk), { written: allWritten, flagsB: { priority: 0, triesLeft: 1, successful: false }, grubBoots: 'A' });

  const ready = await step('/actions/activate-update');
  t.is(ready.update_state, 'Ready');
  t.true(ready.staging_partition.next_to_boot);
  t.false(ready.active_partition.next_to_boot);
  t.like(await diskState(host.disk), { written: allWritten, grubBoots: 'B' });
  t.true((await diskState(host.disk)).flagsB.priority > 0);

  const back = await step('/actions/deactivate-update');
  t.is(back.update_state, 'Staged');
  t.false(back.staging_partition.next_to_boot);
  t.true(back.active_partition.next_to_boot);
  t.deepEqual(await diskState(host.disk), { written: allWritten, flagsB: { priority: 0, triesLeft: 1, successful: false }, grubBoots: 'A' });
  t.is(await activeSetBytes(host.disk), activeBefore, 'set A is byte-for-byte unchanged');
  assertSgdiskClean(t, host.disk);
});

test('after GRUB gave up on an activated B, the restarted API reports the failed update at once; staging again clears it', async (t) => {
  const { call, waitIdle, host, server } = await updateServer(t);
  for (const path of ['/actions/refresh-updates', '/actions/prepare-update', '/actions/activate-update']) {
    t.is((await call('POST', path)).status, 204);
    await waitIdle();
  }
  await server.close();
  // GRUB boots B once (spending its only try), B never marks itself good, the next boot lands on A.
  t.is((await nextBoot({ root: host.root, disk: host.disk })).booted, 'B');
  t.is((await nextBoot({ root: host.root, disk: host.disk })).booted, 'A');
  // A new boot: /run is empty again.
  await rm(join(host.root, 'run', 'cache'), { recursive: true, force: true });
  const logged: string[] = [];
  const restarted = await ApiServer.start({ root: host.root, updogCommand: [updog, '--disk', host.disk], osDisk: host.disk, log: (line) => logged.push(line) });
  t.teardown(() => restarted.close());
  const again = (method: string, uri: string) => apiRequest(restarted.socketPath, method, uri);
  const reported = await again('GET', '/updates/status');
  t.is(reported.status, 200, reported.body);
  const status = JSON.parse(reported.body);
  t.is(status.update_state, 'Idle');
  t.deepEqual(status.failed_update, {
    image: releaseImage,
    partition_set: 'B',
    reason: 'update 1.1.0 in partition set B was tried and did not boot; the host fell back to set A',
  });
  t.is(status.most_recent_command, null);

  for (const path of ['/actions/refresh-updates', '/actions/prepare-update']) {
    t.is((await again('POST', path)).status, 204);
    await restarted.updates.settled();
  }
  const staged = JSON.parse((await again('GET', '/updates/status')).body);
  t.is(staged.update_state, 'Staged', JSON.stringify(staged.most_recent_command));
  t.is(staged.failed_update, null);
  // The journal says what each action did, with updog's own account of the write.
  t.true(logged.includes('update action prepare: Success'), logged.join('\n'));
  t.true(logged.some((line) => /^updog: Wrote \d+\.\d MiB of 1\.1\.0 into the inactive set in \d+\.\d s, peak RSS \d+ MiB$/.test(line)), logged.join('\n'));
  t.deepEqual((await diskState(host.disk)).flagsB, { priority: 0, triesLeft: 1, successful: false });
});

test('actions the state forbids are 409; a host already on the newest release stays Idle', async (t) => {
  const { call, waitIdle, host } = await updateServer(t, '1.1.0');
  const deactivate = await call('POST', '/actions/deactivate-update');
  t.is(deactivate.status, 409);
  t.is(deactivate.body, "Update action 'deactivate' is not allowed in state 'Idle'");
  await call('POST', '/actions/refresh-updates');
  await waitIdle();
  const status = JSON.parse((await call('GET', '/updates/status')).body);
  t.is(status.update_state, 'Idle', JSON.stringify(status.most_recent_command));
  t.is(status.most_recent_command.cmd_status, 'Success');
  t.is((await call('POST', '/actions/activate-update')).status, 409);
  t.is((await call('POST', '/actions/prepare-update')).status, 409);
  t.like(await diskState(host.disk), { written: noneWritten, grubBoots: 'A' });
});

test('while an action runs, other actions and status reads get 423', async (t) => {
  const { call, waitIdle, repo } = await updateServer(t);
  // updog's first request of a refresh is answered after 1.5 s.
  repo.server.addFaults(`${new URL(repo.metadataBaseUrl).pathname}timestamp.json`, { kind: 'slow-headers', ms: 1500 });
  t.is((await call('POST', '/actions/refresh-updates')).status, 204);
  const second = await call('POST', '/actions/refresh-updates');
  t.is(second.status, 423);
  const status = await call('GET', '/updates/status');
  t.is(status.status, 423);
  t.is(status.body, 'Unable to obtain shared lock for reading update status');
  await waitIdle();
  t.is((await call('GET', '/updates/status')).status, 200);
});

test('a failed updog run is recorded with its exit status and stderr, the state is kept and B is not marked', async (t) => {
  const { call, waitIdle, repo, host } = await updateServer(t);
  await call('POST', '/actions/refresh-updates');
  await waitIdle();
  await repo.publish({ corrupt: [release.names.root] });
  await call('POST', '/actions/prepare-update');
  await waitIdle();
  const status = JSON.parse((await call('GET', '/updates/status')).body);
  t.is(status.update_state, 'Available');
  t.is(status.most_recent_command.cmd_type, 'prepare');
  t.is(status.most_recent_command.cmd_status, 'Failed');
  // updog exits 1 on every refusal, as upstream's does; the message says which.
  t.is(status.most_recent_command.exit_status, 1, status.most_recent_command.stderr);
  t.regex(status.most_recent_command.stderr, new RegExp(`target ${release.names.root.replaceAll('.', '\\.')} does not match the signed repository metadata`));
  t.like(await diskState(host.disk), { flagsB: { priority: 0, triesLeft: 0, successful: false }, grubBoots: 'A' });
});

function captureIo() {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: {
      stdout: (text: string) => (out.stdout += text),
      stderr: (text: string) => (out.stderr += text),
      readStdin: async () => '',
    },
  };
}

test('apiclient update check, apply and cancel wait for each action, and a failed prepare is reported', async (t) => {
  const { server, repo, host } = await updateServer(t);
  const socket = server.socketPath;
  const check = captureIo();
  t.is(await main(['-s', socket, 'update', 'check'], check.io), 0, check.out.stderr);
  t.is(JSON.parse(check.out.stdout).update_state, 'Available');
  const apply = captureIo();
  t.is(await main(['update', 'apply', '--socket-path', socket], apply.io), 0, apply.out.stderr);
  t.regex(apply.out.stderr, /\[INFO\] Update has been applied and will take effect on next reboot\./);
  t.is(JSON.parse(await apiCall(socket, 'GET', '/updates/status')).update_state, 'Ready');
  t.like(await diskState(host.disk), { written: allWritten, grubBoots: 'B' });
  const cancel = captureIo();
  t.is(await main(['-s', socket, 'update', 'cancel'], cancel.io), 0, cancel.out.stderr);
  t.like(await diskState(host.disk), { grubBoots: 'A' });
  await repo.publish({ corrupt: [release.names.boot] });
  const failing = captureIo();
  t.is(await main(['-s', socket, 'update', 'apply'], failing.io), 1);
  t.regex(failing.out.stderr, /\[ERROR\] prepare attempt failed with status 'Failed' \(1\): [^]*does not match the signed repository metadata/);
  t.like(await diskState(host.disk), { flagsB: { priority: 0, triesLeft: 0, successful: false }, grubBoots: 'A' });
});
