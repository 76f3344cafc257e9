import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../../src/lib/host/apiclient/main.ts';
import { apiCall } from '../../../src/lib/host/apiclient/request.ts';
import { startServer } from './_root.ts';

const fakeUpdog = fileURLToPath(new URL('../../fixtures/host/fake-updog', import.meta.url));

const update = (version: string) => ({ variant: 'dev', arch: 'x86_64', version, max_version: '9.9.9', waves: {}, images: {} });

async function updateServer(t: import('ava').ExecutionContext, versions: string[]) {
  const state = await mkdtemp(join(tmpdir(), 'brl-updog-'));
  t.teardown(() => rm(state, { recursive: true, force: true }));
  await writeFile(join(state, 'updates.json'), JSON.stringify(versions.map(update)));
  const started = await startServer(t, { updogCommand: [fakeUpdog, state] });
  const waitIdle = () => started.server.updates.settled();
  return { ...started, state, waitIdle };
}

test('status is 404 until the first refresh, which finds the newest update', async (t) => {
  const { call, waitIdle, root } = await updateServer(t, ['1.1.0', '1.2.0', '0.9.0']);
  const before = await call('GET', '/updates/status');
  t.is(before.status, 404);
  t.is(before.body, 'Update status is uninitialized, refresh-updates to initialize it');
  t.is((await call('POST', '/actions/refresh-updates')).status, 204);
  await waitIdle();
  const status = JSON.parse((await call('GET', '/updates/status')).body);
  t.is(status.update_state, 'Available');
  t.deepEqual(status.available_updates, ['1.2.0', '1.1.0', '0.9.0']);
  t.deepEqual(status.chosen_update, { arch: 'x86_64', version: '1.2.0', variant: 'dev' });
  t.deepEqual(status.active_partition, { image: { arch: 'x86_64', version: '1.0.0', variant: 'dev' }, next_to_boot: true });
  t.is(status.staging_partition, null);
  t.is(status.most_recent_command.cmd_type, 'refresh');
  t.is(status.most_recent_command.cmd_status, 'Success');
  t.regex(status.most_recent_command.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  const onDisk = JSON.parse(await readFile(join(root, 'run/cache/thar-be-updates/status.json'), 'utf8'));
  t.deepEqual(onDisk, status);
});

test('prepare, activate and deactivate walk Available → Staged → Ready → Staged with updog calls', async (t) => {
  const { call, waitIdle, state, root } = await updateServer(t, ['1.2.0']);
  const step = async (path: string) => {
    t.is((await call('POST', path)).status, 204);
    await waitIdle();
    return JSON.parse((await call('GET', '/updates/status')).body);
  };
  await step('/actions/refresh-updates');
  const staged = await step('/actions/prepare-update');
  t.is(staged.update_state, 'Staged');
  t.deepEqual(staged.staging_partition, { image: { arch: 'x86_64', version: '1.2.0', variant: 'dev' }, next_to_boot: false });
  const ready = await step('/actions/activate-update');
  t.is(ready.update_state, 'Ready');
  t.true(ready.staging_partition.next_to_boot);
  t.false(ready.active_partition.next_to_boot);
  const back = await step('/actions/deactivate-update');
  t.is(back.update_state, 'Staged');
  t.false(back.staging_partition.next_to_boot);
  t.true(back.active_partition.next_to_boot);
  const calls = (await readFile(join(state, 'calls'), 'utf8')).trim().split('\n');
  t.deepEqual(calls, [
    `whats --all --json --root ${root}`,
    `update-image --image 1.2.0 --json --root ${root}`,
    `update-apply --root ${root}`,
    `update-revert --root ${root}`,
  ]);
});

test('actions the state forbids are 409', async (t) => {
  const { call, waitIdle } = await updateServer(t, []);
  const deactivate = await call('POST', '/actions/deactivate-update');
  t.is(deactivate.status, 409);
  t.is(deactivate.body, "Update action 'deactivate' is not allowed in state 'Idle'");
  await call('POST', '/actions/refresh-updates');
  await waitIdle();
  t.is(JSON.parse((await call('GET', '/updates/status')).body).update_state, 'Idle');
  t.is((await call('POST', '/actions/activate-update')).status, 409);
  t.is((await call('POST', '/actions/prepare-update')).status, 409);
});

test('while an action runs, other actions and status reads get 423', async (t) => {
  const { call, waitIdle, state } = await updateServer(t, ['1.2.0']);
  await writeFile(join(state, 'delay'), '1');
  t.is((await call('POST', '/actions/refresh-updates')).status, 204);
  const second = await call('POST', '/actions/refresh-updates');
  t.is(second.status, 423);
  const status = await call('GET', '/updates/status');
  t.is(status.status, 423);
  t.is(status.body, 'Unable to obtain shared lock for reading update status');
  await waitIdle();
  t.is((await call('GET', '/updates/status')).status, 200);
});

test('a failed updog run is recorded with exit status and stderr and leaves the state', async (t) => {
  const { call, waitIdle, state } = await updateServer(t, ['1.2.0']);
  await call('POST', '/actions/refresh-updates');
  await waitIdle();
  await writeFile(join(state, 'fail-update-image'), 'disk full\n');
  await call('POST', '/actions/prepare-update');
  await waitIdle();
  const status = JSON.parse((await call('GET', '/updates/status')).body);
  t.is(status.update_state, 'Available');
  t.deepEqual(
    { ...status.most_recent_command, timestamp: undefined },
    { cmd_type: 'prepare', cmd_status: 'Failed', exit_status: 1, stderr: 'disk full', timestamp: undefined },
  );
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

test('apiclient update check, apply and cancel wait for each action and report failures', async (t) => {
  const { server, state } = await updateServer(t, ['1.2.0']);
  const socket = server.socketPath;
  const check = captureIo();
  t.is(await main(['-s', socket, 'update', 'check'], check.io), 0, check.out.stderr);
  t.is(JSON.parse(check.out.stdout).update_state, 'Available');
  const apply = captureIo();
  t.is(await main(['update', 'apply', '--socket-path', socket], apply.io), 0, apply.out.stderr);
  t.regex(apply.out.stderr, /\[INFO\] Update has been applied and will take effect on next reboot\./);
  t.is(JSON.parse(await apiCall(socket, 'GET', '/updates/status')).update_state, 'Ready');
  const cancel = captureIo();
  t.is(await main(['-s', socket, 'update', 'cancel'], cancel.io), 0, cancel.out.stderr);
  await writeFile(join(state, 'fail-update-apply'), 'gpt write failed\n');
  const failing = captureIo();
  t.is(await main(['-s', socket, 'update', 'apply'], failing.io), 1);
  t.regex(failing.out.stderr, /\[ERROR\] activate attempt failed with status 'Failed' \(1\): gpt write failed/);
});
