// host-ctr against the real thing: Debian's containerd 1.6 and runc on this machine (temp root and
// socket), Debian's docker-registry on 127.0.0.1 (also behind its own htpasswd authentication), and
// the control image `brl container build` makes. ctr, containerd's own client, is the oracle for
// what containerd holds and runs.
import test from 'ava';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'smol-toml';
import { request } from 'undici';
import { loadFetchConfig } from '../../../src/lib/fetch/config.ts';
import { buildContainerImage } from '../../../src/lib/oci/build.ts';
import { pushImage } from '../../../src/lib/oci/push.ts';
import { parseRegistryTarget } from '../../../src/lib/oci/reference.ts';
import { pullImage } from '../../../src/lib/containerd/pull.ts';
import type { RegistryHosts } from '../../../src/lib/containerd/registry-hosts.ts';
import { BrlError } from '../../../src/lib/core/errors.ts';
import type { RegistryCredential } from '../../../src/lib/oci/registry.ts';
import { runHostContainer, type HostContainerStatus } from '../../../src/lib/host/host-ctr/run.ts';
import { repoDir } from '../../helpers/cli.ts';
import { freePort, startRegistry, startTokenRealm, type TestRegistry } from '../../helpers/registry.ts';
import { startContainerd, type TestContainerd } from './containerd.ts';

const started = await startContainerd();
const refused = 'refused' in started ? started.refused : undefined;
if (refused !== undefined) console.warn(`host-ctr tests skipped: ${refused}`);
const containerTest = refused === undefined ? test.serial : test.serial.skip;
const containerd = started as TestContainerd;

let registry: TestRegistry;
let workDir: string;
/** The control image, pushed and pinned by digest. */
let control: { reference: string; layerDigest: string };

test.before(async () => {
  if (refused !== undefined) return;
  workDir = await mkdtemp(join(tmpdir(), 'brl-host-ctr-'));
  registry = await startRegistry();
  const built = await buildContainerImage(repoDir, 'control', { fetch: await loadFetchConfig(repoDir), outputDir: join(workDir, 'layouts') });
  const pushed = await pushImage(built.layoutDir, parseRegistryTarget(`${registry.address}/brl/control`));
  control = { reference: pushed.reference, layerDigest: built.layer.digest };
});

test.after.always(async () => {
  if (refused !== undefined) return;
  await containerd.stop();
  await registry?.stop();
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
});

/**
 * A front for the test registry on its own port, optionally changing one byte of one blob, or
 * answering blob GETs with a redirect to the registry (as registries hand blobs to storage);
 * records the paths asked for; closed with `close()`.
 */
async function registryFront(corruptDigest?: string, redirectBlobs = false): Promise<{ address: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server: Server = createServer((incoming, outgoing) => {
    requests.push(incoming.url ?? '');
    if (redirectBlobs && incoming.url?.includes('/blobs/') === true) {
      outgoing.writeHead(307, { location: `http://${registry.address}${incoming.url}` }).end();
      return;
    }
    void (async () => {
      const upstream = await request(`http://${registry.address}${incoming.url}`, { method: incoming.method as 'GET', headers: { accept: String(incoming.headers.accept ?? '*/*') } });
      const body = Buffer.from(await upstream.body.arrayBuffer());
      if (corruptDigest !== undefined && incoming.url?.endsWith(corruptDigest) === true) body[body.length >> 1] = (body[body.length >> 1] as number) ^ 0xff;
      const headers = Object.fromEntries(Object.entries(upstream.headers).filter(([name]) => name !== 'content-length' && name !== 'transfer-encoding'));
      outgoing.writeHead(upstream.statusCode, headers).end(body);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Runs a host container until `until` holds for the statuses so far (or 60 s pass), then stops it. */
async function runUntil(options: { name: string; source: string; superpowered?: boolean; root?: string }, until: (statuses: HostContainerStatus[]) => boolean | Promise<boolean>): Promise<{ statuses: HostContainerStatus[]; stateDir: string; containerDir: string; stop(): Promise<void> }> {
  const stateDir = join(workDir, 'run', options.name);
  const containerDir = join(workDir, 'local', options.name);
  const statuses: HostContainerStatus[] = [];
  const controller = new AbortController();
  const running = runHostContainer({
    client: containerd.client,
    name: options.name,
    source: options.source,
    superpowered: options.superpowered ?? false,
    host: { root: options.root ?? join(workDir, 'host'), containerDir },
    stateDir,
    backoffMs: { first: 200, max: 1600 },
    signal: controller.signal,
    onStatus: (status) => statuses.push(status),
  });
  const stop = async (): Promise<void> => {
    controller.abort();
    await running;
  };
  for (const deadline = Date.now() + 60_000; !(await until(statuses)); await sleep(100)) {
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`gave up waiting; statuses: ${JSON.stringify(statuses.map((status) => `${status.state}: ${status.message}`))}`);
    }
  }
  return { statuses, stateDir, containerDir, stop };
}

const runningCount = (statuses: HostContainerStatus[]): number => statuses.filter((status) => status.state === 'running').length;

containerTest('the dev defaults pin the control image brl container build makes (brl.invalid, mirrored)', async (t) => {
  const defaults = parse(await readFile(join(repoDir, 'src/lib/host/defaults/dev/defaults.d/60-host-containers.toml'), 'utf8')) as { settings: { 'host-containers': { control: { source: string } } } };
  t.is(defaults.settings['host-containers'].control.source, `brl.invalid/brl/control@${control.reference.split('@')[1] as string}`);
});

containerTest('pulls a pinned image into containerd: blobs through the Content service, layers unpacked by chain ID, ctr finds it complete and unpacked', async (t) => {
  const first = await pullImage(containerd.client, control.reference);
  t.is(first.blobsWritten, 3, 'manifest, config and the layer');
  // ctr counts the config and the layers, and checks the unpacked snapshot chain itself.
  t.regex(containerd.ctr('images', 'check', `name==${control.reference}`), /complete \(2\/2\)\s+\S+ MiB\/\S+ MiB\s+true/);
  t.regex(containerd.ctr('snapshots', 'ls'), new RegExp(`^${first.chainId}\\s+Committed`, 'm'));
  t.is(first.chainId, first.config.rootfs.diff_ids[0] as string, 'one layer: the chain ID is its diff ID');
  t.is(first.manifestDigest, control.reference.split('@')[1] as string);
});

containerTest('an image pinned by digest and already pulled needs no registry; a tag is resolved at the registry again', async (t) => {
  const front = await registryFront();
  const digest = control.reference.split('@')[1] as string;
  const pinned = `${front.address}/brl/control@${digest}`;
  t.teardown(() => front.close());
  t.is((await pullImage(containerd.client, pinned)).blobsWritten, 0, 'the blobs are in the store already: only the image record is new');
  await front.close();
  t.true(containerd.ctr('images', 'ls', '-q').split('\n').includes(pinned));
  const again = await pullImage(containerd.client, pinned);
  t.is(again.manifestDigest, digest);
  t.is(again.blobsWritten, 0);
  const byTag = await t.throwsAsync(pullImage(containerd.client, `${front.address}/brl/control:0.1.0`));
  t.regex(byTag?.message ?? '', /did not answer .*ECONNREFUSED/);
});

containerTest('runs the control container and restarts it after its task is killed; stopping removes it', async (t) => {
  const run = await runUntil({ name: 'control', source: control.reference }, (statuses) => runningCount(statuses) === 1);
  t.regex(containerd.ctr('task', 'ls'), /^control\s+\d+\s+RUNNING/m);
  const inside = containerd.ctr('task', 'exec', '--exec-id', 'probe', 'control', 'sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; ls /.bottlerocket');
  t.regex(inside, /control-start/, 'PID 1 of its own PID namespace is the image entrypoint');
  t.notRegex(inside, /rootfs/, 'no host root without superpowers');

  containerd.ctr('task', 'kill', '-s', 'KILL', 'control');
  for (const deadline = Date.now() + 30_000; runningCount(run.statuses) < 2 && Date.now() < deadline; ) await sleep(100);
  await run.stop();
  const states = run.statuses.map((status) => status.state);
  t.is(runningCount(run.statuses), 2, `restarted once: ${states.join(' → ')}`);
  const exited = run.statuses.find((status) => status.state === 'exited');
  t.is(exited?.message, 'exit status 137', 'SIGKILL seen as the exit status');
  t.is(states.at(-1), 'stopped');
  t.regex(await readFile(join(run.stateDir, 'control.log'), 'utf8'), /brl control container: /, 'the task output is kept');
  t.is(containerd.ctr('containers', 'ls', '-q').trim(), '', 'nothing left in containerd');
  t.is(JSON.parse(await readFile(join(run.stateDir, 'control.status.json'), 'utf8')).state, 'stopped');
});

containerTest('a superpowered container shares the host PID namespace and sees the host root and its own directory', async (t) => {
  const root = join(workDir, 'fake-root');
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'etc/os-release'), 'ID=brl-test\n');
  const run = await runUntil({ name: 'admin', source: control.reference, superpowered: true, root }, (statuses) => runningCount(statuses) === 1);
  try {
    await writeFile(join(run.containerDir, 'user-data'), 'hello from user data\n');
    const inside = containerd.ctr('task', 'exec', '--exec-id', 'probe', 'admin', 'sh', '-c',
      'cat /.bottlerocket/rootfs/etc/os-release /.bottlerocket/host-containers/current/user-data /etc/bottlerocket-release; cat /proc/1/cmdline | tr "\\0" " "');
    t.regex(inside, /^ID=brl-test\nhello from user data\nID=brl-test\n/);
    t.notRegex(inside, /control-start/, 'PID 1 is the host\'s');
  } finally {
    await run.stop();
  }
});

containerTest('a registry that is down, a malformed source and a digest mismatch end in failed statuses with the reason, retried with growing delays, no image recorded', async (t) => {
  const digest = control.reference.split('@')[1] as string;
  const down = await runUntil({ name: 'down', source: `127.0.0.1:${await freePort()}/brl/control@${digest}` }, (statuses) => statuses.filter((status) => status.state === 'failed').length >= 3);
  await down.stop();
  const failures = down.statuses.filter((status) => status.state === 'failed');
  t.regex(failures[0]?.message ?? '', /did not answer .*ECONNREFUSED/);
  t.deepEqual(failures.slice(0, 3).map((status) => status.retryInSeconds), [0.2, 0.4, 0.8], 'the delay doubles');

  const malformed = await runUntil({ name: 'malformed', source: 'not a reference' }, (statuses) => statuses.some((status) => status.state === 'failed'));
  await malformed.stop();
  t.regex(malformed.statuses.find((status) => status.state === 'failed')?.message ?? '', /registry reference "not a reference"/);

  // A registry front that serves the layer with one byte changed.
  const front = await registryFront(control.layerDigest);
  t.teardown(() => front.close());
  const mismatchSource = `${front.address}/brl/control@${digest}`;
  containerd.ctr('content', 'rm', control.layerDigest);
  const mismatch = await runUntil({ name: 'mismatch', source: mismatchSource }, (statuses) => statuses.some((status) => status.state === 'failed'));
  await mismatch.stop();
  t.regex(mismatch.statuses.find((status) => status.state === 'failed')?.message ?? '', new RegExp(`served blob ${control.layerDigest} of brl/control as bytes hashing to sha256:`));
  t.false(containerd.ctr('images', 'ls', '-q').includes(mismatchSource), 'no image recorded for the bad pull');
  t.false(containerd.ctr('content', 'ls', '-q').includes(control.layerDigest), 'the changed layer was not committed');
});

function hosts(mirrors: Record<string, string[]>, credentials: Record<string, RegistryCredential> = {}): RegistryHosts {
  return { mirrors: new Map(Object.entries(mirrors)), credentials: new Map(Object.entries(credentials)) };
}

containerTest('pulls through the mirrors in order: one that is down is passed over, the next serves the image (its blobs through a redirect), the registry itself is not asked', async (t) => {
  const digest = control.reference.split('@')[1] as string;
  // The mirror hands blobs over with a redirect, as registries do to their storage.
  const front = await registryFront(undefined, true);
  t.teardown(() => front.close());
  const down = await freePort();
  // brl.invalid resolves nowhere (RFC 6761): only the mirrors can serve it.
  const source = `brl.invalid/brl/control@${digest}`;
  const logged: string[] = [];
  const pulled = await pullImage(containerd.client, source, { registryHosts: hosts({ 'brl.invalid': [`http://127.0.0.1:${down}`, `http://${front.address}/v2`] }), log: (line) => logged.push(line) });
  t.is(pulled.manifestDigest, digest);
  // The layer at least (the test before removed it); the redirected GET below shows where it came from.
  t.true(pulled.blobsWritten >= 1);
  t.regex(logged.join('\n'), new RegExp(`mirror http://127\\.0\\.0\\.1:${down} failed, trying the next endpoint: .*did not answer .*ECONNREFUSED`));
  t.true(front.requests.includes(`/v2/brl/control/manifests/${digest}`), `the second mirror served the manifest: ${front.requests.join(' ')}`);
  t.true(front.requests.includes(`/v2/brl/control/blobs/${control.layerDigest}`), 'and redirected the layer\'s GET');
  t.true(containerd.ctr('images', 'ls', '-q').split('\n').includes(source));
});

containerTest('a mirror that serves a changed layer is refused and named; the next endpoint is tried, and when none serves the image the error gives each one\'s reason', async (t) => {
  const digest = control.reference.split('@')[1] as string;
  const bad = await registryFront(control.layerDigest);
  const good = await registryFront();
  t.teardown(() => Promise.all([bad.close(), good.close()]));
  const registry = `127.0.0.1:${await freePort()}`;
  const source = `${registry}/brl/control@${digest}`;
  containerd.ctr('content', 'rm', control.layerDigest);

  const error = await t.throwsAsync(pullImage(containerd.client, source, { registryHosts: hosts({ [registry]: [`http://${bad.address}`] }) }), { instanceOf: BrlError });
  t.is(error?.code, 'PULL_ENDPOINTS_FAILED');
  t.regex(error?.message ?? '', new RegExp(`mirror http://${bad.address}: registry ${bad.address} served blob ${control.layerDigest} of brl/control as bytes hashing to sha256:[0-9a-f]{64}; registry http://${registry}: .*ECONNREFUSED`));
  t.false(containerd.ctr('images', 'ls', '-q').includes(source), 'no image recorded');
  t.false(containerd.ctr('content', 'ls', '-q').includes(control.layerDigest), 'the changed layer was not committed');

  const logged: string[] = [];
  const pulled = await pullImage(containerd.client, source, { registryHosts: hosts({ [registry]: [`http://${bad.address}`, `http://${good.address}`] }), log: (line) => logged.push(line) });
  t.is(pulled.manifestDigest, digest);
  // The layer came from the second mirror (the manifest and config may be fetched again too, if containerd's
  // garbage collector took them after the failed pull's lease ended).
  t.true(pulled.blobsWritten >= 1);
  t.true(good.requests.includes(`/v2/brl/control/blobs/${control.layerDigest}`), `the second mirror served the layer: ${good.requests.join(' ')}`);
  t.regex(logged.join('\n'), new RegExp(`mirror http://${bad.address} failed, trying the next endpoint: registry ${bad.address} served blob ${control.layerDigest}`));
  t.regex(containerd.ctr('images', 'check', `name==${source}`), /complete \(2\/2\)/);
});

// bcrypt of "secret" with cost 5 and a fixed salt (python3 -c 'import crypt; print(crypt.crypt("secret", "$2b$05$abcdefghijklmnopqrstuu"))').
const htpasswd = 'brl:$2b$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a\n';

containerTest('credentials answer a registry\'s Basic challenge; without them, or with a wrong password, the pull fails naming the registry and the setting', async (t) => {
  const digest = control.reference.split('@')[1] as string;
  const guarded = await startRegistry({ htpasswd, dataDir: registry.dataDir });
  t.teardown(() => guarded.stop());
  const source = `${guarded.address}/brl/control@${digest}`;

  const anonymous = await t.throwsAsync(pullImage(containerd.client, source), { instanceOf: BrlError });
  t.is(anonymous?.code, 'REGISTRY_AUTH_REQUIRED');
  t.is(anonymous?.message, `registry ${guarded.address} asks for a user name and password while reading manifest ${digest}`);
  t.regex(anonymous?.hint ?? '', new RegExp(`credentials for ${guarded.address} in settings\\.container-registry\\.credentials`));

  const wrong = await t.throwsAsync(pullImage(containerd.client, source, { registryHosts: hosts({}, { [guarded.address]: { username: 'brl', password: 'not-it' } }) }), { instanceOf: BrlError });
  t.regex(wrong?.message ?? '', /answered 401 \(UNAUTHORIZED: /);
  t.regex(wrong?.hint ?? '', /check the credentials for .* in settings\.container-registry\.credentials/);

  // auth: base64 of user:password, as in Docker's config.json.
  const pulled = await pullImage(containerd.client, source, { registryHosts: hosts({}, { [guarded.address]: { auth: Buffer.from('brl:secret').toString('base64') } }) });
  t.is(pulled.manifestDigest, digest);
  t.true(containerd.ctr('images', 'ls', '-q').split('\n').includes(source));
});

containerTest('credentials get a Bearer token from the registry\'s token realm, by user name and password or by identity token; a realm that refuses is named', async (t) => {
  const digest = control.reference.split('@')[1] as string;
  const realm = await startTokenRealm({ username: 'brl', password: 'secret', refreshToken: 'refresh-me' });
  t.teardown(() => realm.close());
  const guarded = await startRegistry({ token: realm.token, dataDir: registry.dataDir });
  t.teardown(() => guarded.stop());
  const pinned = `${guarded.address}/brl/control@${digest}`;

  const anonymous = await t.throwsAsync(pullImage(containerd.client, pinned), { instanceOf: BrlError });
  t.is(anonymous?.code, 'REGISTRY_AUTH_REQUIRED');
  t.regex(anonymous?.message ?? '', new RegExp(`^registry ${guarded.address} refused a token for repository:brl/control:pull \\(http://127\\.0\\.0\\.1:\\d+ answered 401\\)$`));

  const byPassword = await pullImage(containerd.client, pinned, { registryHosts: hosts({}, { [guarded.address]: { username: 'brl', password: 'secret' } }) });
  t.is(byPassword.manifestDigest, digest);
  t.deepEqual(realm.requests, ['none', 'basic'], 'one token for the whole pull, asked for with the user name and password');

  // By tag: resolved at the registry again (a pinned image already pulled would not be).
  const byIdentityToken = await pullImage(containerd.client, `${guarded.address}/brl/control:0.1.0`, { registryHosts: hosts({}, { [guarded.address]: { identitytoken: 'refresh-me' } }) });
  t.is(byIdentityToken.manifestDigest, digest);
  t.deepEqual(realm.requests, ['none', 'basic', 'refresh-token']);
});
