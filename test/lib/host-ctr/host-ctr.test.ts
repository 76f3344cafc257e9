// host-ctr against the real thing: Debian's containerd 1.6 and runc on this machine (temp root and
// socket), Debian's docker-registry on 127.0.0.1, and the control image `brl container build`
// makes. ctr, containerd's own client, is the oracle for what containerd holds and runs.
import test from 'ava';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { loadFetchConfig } from '../../../src/lib/fetch/config.ts';
import { buildContainerImage } from '../../../src/lib/oci/build.ts';
import { pushImage } from '../../../src/lib/oci/push.ts';
import { parseRegistryTarget } from '../../../src/lib/oci/reference.ts';
import { pullImage } from '../../../src/lib/containerd/pull.ts';
import { runHostContainer, type HostContainerStatus } from '../../../src/lib/host/host-ctr/run.ts';
import { repoDir } from '../../helpers/cli.ts';
import { freePort, startRegistry, type TestRegistry } from '../../helpers/registry.ts';
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

/** A front for the test registry on its own port, optionally changing one byte of one blob; closed with `close()`. */
async function registryFront(corruptDigest?: string): Promise<{ address: string; close(): Promise<void> }> {
  const server: Server = createServer((incoming, outgoing) => {
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
