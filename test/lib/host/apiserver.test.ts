import test from 'ava';
import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { apiRequest, type ApiResponse } from '../../../src/lib/host/apiclient/request.ts';
import { ApiServer } from '../../../src/lib/host/apiserver/server.ts';
import { readVersionChain } from '../../../src/lib/host/datastore/layout.ts';
import { Datastore } from '../../../src/lib/host/datastore/store.ts';
import { hostPaths } from '../../../src/lib/host/paths.ts';
import { makeRoot, send, startServer } from './_root.ts';

const run = promisify(execFile);

test('GET /settings returns the committed defaults, filtered by keys or prefix', async (t) => {
  const { call } = await startServer(t);
  const all = JSON.parse((await call('GET', '/settings')).body);
  t.is(all.motd, 'Welcome to Bottlerocket!');
  t.deepEqual(all.ntp['time-servers'], ['169.254.169.123', '2.amazon.pool.ntp.org']);
  t.deepEqual(JSON.parse((await call('GET', '/settings?keys=settings.motd,settings.ntp.options')).body), {
    motd: 'Welcome to Bottlerocket!',
    ntp: { options: ['iburst'] },
  });
  t.deepEqual(JSON.parse((await call('GET', '/settings?prefix=ntp.opt')).body), { ntp: { options: ['iburst'] } });
  t.deepEqual(JSON.parse((await call('GET', '/settings?prefix=nothing')).body), {});
  const empty = await call('GET', '/settings?keys=');
  t.is(empty.status, 400);
  t.is(empty.body, "Input 'keys' cannot be empty");
});

test('escaped request targets are read as URL parsing reads them: %-escapes and + decoded in the query, not in the path', async (t) => {
  const { call } = await startServer(t);
  t.is((await call('PATCH', '/settings?tx=two+words', { motd: 'escaped' })).status, 204);
  t.deepEqual(JSON.parse((await call('GET', '/tx/list')).body), ['two words']);
  t.deepEqual(JSON.parse((await call('POST', '/tx/commit?tx=two%20words')).body), ['settings.motd']);
  t.deepEqual(JSON.parse((await call('GET', '/settings?keys=settings%2Emotd')).body), { motd: 'escaped' });
  t.deepEqual(JSON.parse((await call('GET', '/tx/../settings?keys=settings.motd')).body), { motd: 'escaped' });
  const escapedPath = await call('GET', '/sett%69ngs');
  t.is(escapedPath.status, 404);
  t.is(escapedPath.body, 'Not found: /sett%69ngs');
});

test('GET / filters each section by prefix as upstream does', async (t) => {
  const { call } = await startServer(t);
  const se = JSON.parse((await call('GET', '/?prefix=se')).body);
  t.deepEqual(Object.keys(se).sort(), ['services', 'settings']);
  t.deepEqual(JSON.parse((await call('GET', '/?prefix=settings.motd')).body), { settings: { motd: 'Welcome to Bottlerocket!' } });
  t.deepEqual(JSON.parse((await call('GET', '/?prefix=motd')).body), {});
  const os = JSON.parse((await call('GET', '/?prefix=os.version')).body);
  t.deepEqual(os, { os: { version_id: '1.0.0' } });
  const whole = JSON.parse((await call('GET', '/')).body);
  t.deepEqual(Object.keys(whole).sort(), ['configuration-files', 'os', 'services', 'settings']);
});

test('PATCH /settings then commit: pending in /tx until committed, 422 when nothing is pending', async (t) => {
  const { call } = await startServer(t);
  t.is((await call('PATCH', '/settings?tx=mine', { motd: 'pending' })).status, 204);
  t.deepEqual(JSON.parse((await call('GET', '/tx?tx=mine')).body), { motd: 'pending' });
  t.deepEqual(JSON.parse((await call('GET', '/tx/list')).body), ['mine']);
  t.is(JSON.parse((await call('GET', '/settings?keys=settings.motd')).body).motd, 'Welcome to Bottlerocket!');
  const commit = await call('POST', '/tx/commit?tx=mine');
  t.is(commit.status, 200);
  t.deepEqual(JSON.parse(commit.body), ['settings.motd']);
  t.is(JSON.parse((await call('GET', '/settings?keys=settings.motd')).body).motd, 'pending');
  const again = await call('POST', '/tx/commit?tx=mine');
  t.is(again.status, 422);
  t.is(again.body, 'Tried to commit with no pending changes');
  t.deepEqual(JSON.parse((await call('GET', '/tx?tx=unknown')).body), {});
});

test('DELETE /tx discards a transaction and lists its keys', async (t) => {
  const { call } = await startServer(t);
  await call('PATCH', '/settings?tx=drop', { motd: 'x', ntp: { options: ['prefer'] } });
  const dropped = await call('DELETE', '/tx?tx=drop');
  t.is(dropped.status, 200);
  t.deepEqual(JSON.parse(dropped.body).sort(), ['settings.motd', 'settings.ntp.options']);
  t.deepEqual(JSON.parse((await call('DELETE', '/tx?tx=drop')).body), []);
});

test('null in a PATCH removes the setting and everything below it at commit', async (t) => {
  const { call } = await startServer(t);
  await call('PATCH', '/settings', { 'host-containers': null, motd: null });
  const keys = JSON.parse((await call('POST', '/tx/commit')).body) as string[];
  t.true(keys.includes('settings.motd'));
  t.true(keys.includes('settings.host-containers.admin.source'));
  const settings = JSON.parse((await call('GET', '/settings')).body);
  t.false('motd' in settings);
  t.false('host-containers' in settings);
  t.truthy(settings.ntp);
  const affected = JSON.parse((await call('GET', '/metadata/affected-services?keys=settings.host-containers.admin')).body);
  t.deepEqual(affected, { 'settings.host-containers.admin': ['host-containers'] }, 'metadata beside removed keys stays');
});

test('a value PATCHed after a null under the same key in one transaction is written after the removal', async (t) => {
  const { call } = await startServer(t);
  await call('PATCH', '/settings?tx=redo', { 'host-containers': null });
  await call('PATCH', '/settings?tx=redo', { 'host-containers': { admin: { enabled: true } } });
  t.deepEqual(JSON.parse((await call('GET', '/tx?tx=redo')).body), { 'host-containers': { admin: { enabled: true } } });
  t.is((await call('POST', '/tx/commit?tx=redo')).status, 200);
  t.deepEqual(JSON.parse((await call('GET', '/settings?prefix=host-containers')).body), {
    'host-containers': { admin: { enabled: true } },
  });
});

test('PATCH /settings/keypair types values as bool, integer, float, then string', async (t) => {
  const { call } = await startServer(t);
  const ok = await call('PATCH', '/settings/keypair', {
    request_payload: ['settings.updates.ignore-waves=true', 'updates.seed=42', 'motd=hello world', 'kernel.sysctl."vm.max_map_count"=text'],
  });
  t.is(ok.status, 204, ok.body);
  t.deepEqual(JSON.parse((await call('GET', '/tx')).body), {
    motd: 'hello world',
    updates: { 'ignore-waves': true, seed: 42 },
    kernel: { sysctl: { 'vm.max_map_count': 'text' } },
  });
  const mismatch = await call('PATCH', '/settings/keypair', { request_payload: ['motd=42'] });
  t.is(mismatch.status, 400);
  t.regex(mismatch.body, /^Unable to match your input to the data model\. {2}We may not have enough type information\. {2}Please try the --json input form\. {2}Cause: .*settings\.motd/);
  const noEquals = await call('PATCH', '/settings/keypair', { request_payload: ['motd'] });
  t.is(noEquals.status, 400);
  t.regex(noEquals.body, /^Failed to split the string/);
});

test('commit result quotes key segments that contain dots', async (t) => {
  const { call } = await startServer(t);
  await call('PATCH', '/settings', { kernel: { sysctl: { 'vm.max_map_count': '262144' } } });
  t.deepEqual(JSON.parse((await call('POST', '/tx/commit')).body), ['settings.kernel.sysctl."vm.max_map_count"']);
  t.deepEqual(JSON.parse((await call('GET', '/settings?prefix=settings.kernel')).body), {
    kernel: { sysctl: { 'vm.max_map_count': '262144' } },
  });
});

for (const [name, body, reason] of [
  ['invalid JSON', '{"motd": ', /^Unable to parse JSON request body/],
  ['an unknown setting', { nope: 1 }, /^Invalid setting 'settings\.nope': unknown setting/],
  ['a wrong type', { updates: { seed: 'many' } }, /^Invalid setting 'settings\.updates\.seed': expected u32/],
  ['a value out of range', { updates: { seed: 4_294_967_296 } }, /expected u32/],
  ['bad key characters', { kernel: { sysctl: { 'a b': '1' } } }, /sysctl name|invalid character/],
  ['a bad hostname', { network: { hostname: '-bad' } }, /not a valid hostname/],
  ['a non-object body', [1, 2], /must be a JSON object/],
] as const) {
  test(`PATCH with ${name} is a 400 with a clear message and changes nothing`, async (t) => {
    const { call, root } = await startServer(t);
    const before = (await call('GET', '/')).body;
    const tree = (await run('find', [join(root, 'var/lib/bottlerocket/datastore/current/'), '-follow'])).stdout;
    const response = await call('PATCH', '/settings', body);
    t.is(response.status, 400);
    t.regex(response.body, reason);
    t.is((await call('GET', '/')).body, before);
    t.deepEqual(JSON.parse((await call('GET', '/tx/list')).body), []);
    t.is((await run('find', [join(root, 'var/lib/bottlerocket/datastore/current/'), '-follow'])).stdout, tree);
  });
}

test('a 10 MiB body gets 413 and the datastore is unchanged', async (t) => {
  const { call } = await startServer(t);
  const before = (await call('GET', '/')).body;
  const response = await call('PATCH', '/settings', JSON.stringify({ motd: 'x'.repeat(10 * 1024 * 1024) }));
  t.is(response.status, 413);
  t.regex(response.body, /larger than the limit/);
  t.is((await call('GET', '/')).body, before);
  t.deepEqual(JSON.parse((await call('GET', '/tx/list')).body), []);
});

test('unknown paths are 404 and known paths with another method are 405', async (t) => {
  const { call } = await startServer(t);
  const missing = await call('GET', '/nope');
  t.is(missing.status, 404);
  const wrong = await call('DELETE', '/settings');
  t.is(wrong.status, 405);
  t.regex(wrong.body, /DELETE is not allowed on \/settings/);
});

test('GET /os, /services, /configuration-files and /metadata answer with upstream shapes', async (t) => {
  const { call } = await startServer(t);
  t.deepEqual(Object.keys(JSON.parse((await call('GET', '/os')).body)).sort(), ['arch', 'build_id', 'pretty_name', 'variant_id', 'version_id']);
  t.deepEqual(JSON.parse((await call('GET', '/os?prefix=variant')).body), { variant_id: 'dev' });
  t.deepEqual(JSON.parse((await call('GET', '/services?names=sysctl')).body), {
    sysctl: { 'configuration-files': ['sysctl-conf'], 'restart-commands': ['/usr/lib/systemd/systemd-sysctl /etc/sysctl.d/90-settings.conf'] },
  });
  const missing = await call('GET', '/services?names=nothing');
  t.is(missing.status, 404);
  t.is(missing.body, "Found no 'services.nothing' in datastore");
  t.deepEqual(JSON.parse((await call('GET', '/configuration-files?names=motd')).body), {
    motd: { path: '/etc/motd', 'template-path': '/usr/share/templates/motd' },
  });
  t.deepEqual(JSON.parse((await call('GET', '/metadata/affected-services?keys=settings.ntp.time-servers,settings.nothing')).body), {
    'settings.ntp.time-servers': ['ntp'],
  });
  t.is((await call('GET', '/metadata/affected-services')).body, "Missing required input 'keys'");
  t.deepEqual(JSON.parse((await call('GET', '/metadata/setting-generators')).body), { 'settings.updates.seed': 'bork seed' });
  t.deepEqual(JSON.parse((await call('GET', '/report')).body), [{ name: 'cis', description: 'CIS Bottlerocket Benchmark' }]);
});

test('cached answers change as soon as a commit lands', async (t) => {
  const { call } = await startServer(t);
  t.is(JSON.parse((await call('GET', '/settings?prefix=motd')).body).motd, 'Welcome to Bottlerocket!');
  await call('PATCH', '/settings', { motd: 'fresh' });
  await call('POST', '/tx/commit');
  t.is(JSON.parse((await call('GET', '/settings?prefix=motd')).body).motd, 'fresh');
});

test('N parallel clients setting and committing: every commit is present at the end', async (t) => {
  const { call } = await startServer(t);
  const clients = 24;
  const results = await Promise.all(
    Array.from({ length: clients }, async (_, index) => {
      const tx = `client-${index}`;
      const patch = await call('PATCH', `/settings?tx=${tx}`, { kernel: { sysctl: { [`brl.client${index}`]: String(index) } } });
      const commit = await call('POST', `/tx/commit?tx=${tx}`);
      return { patch: patch.status, commit: commit.status, keys: commit.body };
    }),
  );
  for (const [index, result] of results.entries()) {
    t.is(result.patch, 204);
    t.is(result.commit, 200, result.keys);
    t.deepEqual(JSON.parse(result.keys), [`settings.kernel.sysctl."brl.client${index}"`]);
  }
  const sysctl = JSON.parse((await call('GET', '/settings?prefix=kernel')).body).kernel.sysctl;
  t.deepEqual(Object.keys(sysctl).length, clients);
  for (let index = 0; index < clients; index += 1) t.is(sysctl[`brl.client${index}`], String(index));
  t.deepEqual(JSON.parse((await call('GET', '/tx/list')).body), []);
});

test('the socket is mode 0660 and owned by --socket-gid', async (t) => {
  const gid = 4242;
  const { server } = await startServer(t, { socketGid: gid });
  const stats = await stat(server.socketPath);
  t.true(stats.isSocket());
  t.is(stats.mode & 0o777, 0o660);
  t.is(stats.gid, gid);
  const { stdout } = await run('stat', ['-c', '%a %g', server.socketPath]);
  t.is(stdout.trim(), `660 ${gid}`);
});

test('the on-disk datastore holds one JSON file per key with percent-encoded segments once the log is checkpointed', async (t) => {
  const { root, server, call } = await startServer(t);
  await call('PATCH', '/settings', { kernel: { sysctl: { 'net.ipv4.ip_forward': '1' } } });
  await call('POST', '/tx/commit');
  await server.store.settle();
  const live = join(root, 'var/lib/bottlerocket/datastore/current/live');
  t.is(await readFile(join(live, 'settings/motd'), 'utf8'), '"Welcome to Bottlerocket!"');
  t.is(await readFile(join(live, 'settings/kernel/sysctl/net%2Eipv4%2Eip_forward'), 'utf8'), '"1"');
  t.is(await readFile(join(live, 'settings/updates/seed.setting-generator'), 'utf8'), '"bork seed"');
  t.is(await readFile(join(live, 'settings/ntp.affected-services'), 'utf8'), '["ntp"]');
});

test('POST /actions/rollback-to-inactive (brl) runs signpost inside the root; a refusal is a 500 with its stderr', async (t) => {
  const { root, call } = await startServer(t);
  await mkdir(join(root, 'usr/bin'), { recursive: true });
  await writeFile(join(root, 'usr/bin/signpost'), `#!/bin/sh\necho "$*" > "${root}/signpost.args"\n`);
  await chmod(join(root, 'usr/bin/signpost'), 0o755);
  t.is((await call('POST', '/actions/rollback-to-inactive')).status, 204);
  t.is(await readFile(join(root, 'signpost.args'), 'utf8'), 'rollback-to-inactive\n');
  await writeFile(join(root, 'usr/bin/signpost'), '#!/bin/sh\necho "set B cannot boot" >&2\nexit 1\n');
  const refused = await call('POST', '/actions/rollback-to-inactive');
  t.is(refused.status, 500);
  t.is(refused.body, 'Failed to roll back, exit code: 1, stderr: set B cannot boot\n');
});

test('requests without a running server fail with a clear connection error', async (t) => {
  const error = await t.throwsAsync(apiRequest('/tmp/brl-no-such-socket.sock', 'GET', '/'));
  t.regex(error.message, /Failed to connect to the API socket/);
});

test('POST /actions/reboot runs systemctl reboot inside the root; a failure is a 500 with its exit code and stderr', async (t) => {
  const { root, call } = await startServer(t);
  await mkdir(join(root, 'bin'), { recursive: true });
  await writeFile(join(root, 'bin/systemctl'), `#!/bin/sh\necho "$*" > "${root}/reboot.args"\n`);
  await chmod(join(root, 'bin/systemctl'), 0o755);
  t.is((await call('POST', '/actions/reboot')).status, 204);
  t.is(await readFile(join(root, 'reboot.args'), 'utf8'), 'reboot --check-inhibitors=no\n');
  await writeFile(join(root, 'bin/systemctl'), '#!/bin/sh\necho "inhibited" >&2\nexit 1\n');
  const failed = await call('POST', '/actions/reboot');
  t.is(failed.status, 500);
  t.is(failed.body, 'Failed to reboot, exit code: 1, stderr: inhibited\n');
});

// ---- pending transactions: in memory for the API, on disk for the processes that run before it ----

/** Starts the apiserver on `root` and stops it when the test ends. */
async function serve(t: import('ava').ExecutionContext, root: string): Promise<{ server: ApiServer; call: (method: string, uri: string, body?: unknown) => Promise<ApiResponse> }> {
  const server = await ApiServer.start({ root, log: () => undefined });
  t.teardown(() => server.close());
  const call = (method: string, uri: string, body?: unknown) => apiRequest(server.socketPath, method, uri, body === undefined ? undefined : JSON.stringify(body));
  return { server, call };
}

test('the launch transaction storewolf wrote from another process is seen, PATCHed on disk and committed once by the apiserver', async (t) => {
  const root = await makeRoot(t);
  const storewolf = fileURLToPath(new URL('../../../src/lib/host/boot/storewolf.ts', import.meta.url));
  const script = `const { runStorewolf } = await import(${JSON.stringify(storewolf)});
const { hostPaths } = await import(${JSON.stringify(fileURLToPath(new URL('../../../src/lib/host/paths.ts', import.meta.url)))});
const { SettingsModel } = await import(${JSON.stringify(fileURLToPath(new URL('../../../src/lib/host/settings/model.ts', import.meta.url)))});
await runStorewolf(hostPaths(process.argv[1]), '1.0.0', await SettingsModel.load(process.argv[1]));`;
  await run(process.execPath, ['--input-type=module', '-e', script, root]);
  const versionDir = (await readVersionChain(hostPaths(root).datastoreBase))!.versionDir;
  const launchMotd = join(versionDir, 'pending/bottlerocket-launch/settings/motd');

  const first = await serve(t, root);
  t.deepEqual(JSON.parse((await first.call('GET', '/tx/list')).body), ['bottlerocket-launch']);
  t.is(JSON.parse((await first.call('GET', '/tx?tx=bottlerocket-launch')).body).motd, 'Welcome to Bottlerocket!');
  // early-boot-config PATCHes user data into the same transaction: it reaches the files as well.
  t.is((await first.call('PATCH', '/settings?tx=bottlerocket-launch', { motd: 'from user data' })).status, 204);
  t.is(await readFile(launchMotd, 'utf8'), '"from user data"');
  await first.server.close();

  const second = await serve(t, root);
  t.is(JSON.parse((await second.call('GET', '/tx?tx=bottlerocket-launch')).body).motd, 'from user data', 'kept over an apiserver restart');
  t.is((await second.call('POST', '/tx/commit?tx=bottlerocket-launch')).status, 200);
  t.is(JSON.parse((await second.call('GET', '/settings?keys=settings.motd')).body).motd, 'from user data');
  await second.server.close();
  t.deepEqual(await readdir(join(versionDir, 'pending')), []);

  const third = await serve(t, root);
  t.deepEqual(JSON.parse((await third.call('GET', '/tx/list')).body), []);
  t.is((await third.call('POST', '/tx/commit?tx=bottlerocket-launch')).status, 422, 'committed once, not again after a restart');
});

test('a transaction PATCHed through the API and not committed is gone after the apiserver restarts (brl keeps it in memory)', async (t) => {
  const { root, server, call } = await startServer(t);
  t.is((await call('PATCH', '/settings?tx=unsaved', { motd: 'never committed' })).status, 204);
  t.deepEqual(JSON.parse((await call('GET', '/tx/list')).body), ['unsaved']);
  await server.close();
  const restarted = await serve(t, root);
  t.deepEqual(JSON.parse((await restarted.call('GET', '/tx/list')).body), []);
  t.is((await restarted.call('POST', '/tx/commit?tx=unsaved')).status, 422);
  t.is(JSON.parse((await restarted.call('GET', '/settings?keys=settings.motd')).body).motd, 'Welcome to Bottlerocket!');
});

test('8 clients committing in loops share log flushes, and every acknowledged commit is on disk as a SIGKILL would leave it', async (t) => {
  const { root, server } = await startServer(t);
  const clients = 8;
  const rounds = 40;
  const before = server.store.stats;
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        for (let round = 1; round <= rounds; round += 1) {
          const tx = `loop-${client}`;
          const patch = await send(agent, server.socketPath, 'PATCH', `/settings?tx=${tx}`, JSON.stringify({ kernel: { sysctl: { [`loop-c${client}`]: `${round}` } } }));
          const commit = await send(agent, server.socketPath, 'POST', `/tx/commit?tx=${tx}`);
          if (patch.status !== 204 || commit.status !== 200) throw new Error(`client ${client} round ${round}: PATCH ${patch.status}, commit ${commit.status} ${commit.body}`);
        }
      } finally {
        agent.destroy();
      }
    }),
  );
  const after = server.store.stats;
  t.is(after.commits - before.commits, clients * rounds);
  t.true(after.logWrites - before.logWrites < clients * rounds, `${after.logWrites - before.logWrites} log flushes for ${clients * rounds} commits`);
  // What a SIGKILL now would leave: a copy of the datastore as it is on disk, log not yet checkpointed.
  const copy = await mkdtemp(join(tmpdir(), 'brl-ds-copy-'));
  t.teardown(() => rm(copy, { recursive: true, force: true }));
  await cp(hostPaths(root).datastoreBase, copy, { recursive: true, verbatimSymlinks: true });
  const fromDisk = await Datastore.open(copy);
  const sysctl = fromDisk.document(['settings', 'kernel', 'sysctl']);
  for (let client = 0; client < clients; client += 1) t.is(sysctl[`loop-c${client}`], `${rounds}`);
});


test('a request in flight when the server closes still gets its whole answer (a reboot is answered while systemd stops the server)', async (t) => {
  // The "reboot" takes 600 ms, as systemctl returns only once the shutdown job is queued; the
  // server is told to close once the command runs, as systemd's SIGTERM would come.
  const marker = join(await mkdtemp(join(tmpdir(), 'brl-reboot-')), 'started');
  t.teardown(() => rm(join(marker, '..'), { recursive: true, force: true }));
  const { server, call } = await startServer(t, { rebootCommand: ['sh', '-c', `touch ${marker}; sleep 0.6`] });
  const reboot = call('POST', '/actions/reboot');
  while (!(await stat(marker).catch(() => undefined))) await new Promise((resolve) => setTimeout(resolve, 10));
  const closed = server.close();
  const response = await reboot;
  t.is(response.status, 204);
  await closed;
});
