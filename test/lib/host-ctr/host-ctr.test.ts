// host-ctr against the real thing: Debian's containerd 1.6 and runc on this machine (temp root and
// socket), Debian's docker-registry on 127.0.0.1 (also behind its own htpasswd authentication), and
// the control image `brl container build` makes. ctr, containerd's own client, is the oracle for
// what containerd holds and runs.
import test from 'ava';
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'smol-toml';
import { request } from 'undici';
import { loadFetchConfig } from '../../../src/lib/fetch/config.ts';
import { buildContainerImage } from '../../../src/lib/oci/build.ts';
import { blobPath, readLayoutImage, writeBlob, writeIndex } from '../../../src/lib/oci/layout.ts';
import { pushImage } from '../../../src/lib/oci/push.ts';
import { parseRegistryTarget } from '../../../src/lib/oci/reference.ts';
import { pullImage } from '../../../src/lib/containerd/pull.ts';
import type { RegistryHosts } from '../../../src/lib/containerd/registry-hosts.ts';
import { BrlError } from '../../../src/lib/core/errors.ts';
import type { RegistryCredential } from '../../../src/lib/oci/registry.ts';
import { runHostContainer, type HostContainerStatus } from '../../../src/lib/host/host-ctr/run.ts';
import { hostCtrMain } from '../../../src/lib/host/host-ctr/main.ts';
import { cutMarker, MAX_LINE_BYTES } from '../../../src/lib/host/host-ctr/output.ts';
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
let control: { reference: string; layerDigest: string; layoutDir: string };

test.before(async () => {
  if (refused !== undefined) return;
  workDir = await mkdtemp(join(tmpdir(), 'brl-host-ctr-'));
  registry = await startRegistry();
  const built = await buildContainerImage(repoDir, 'control', { fetch: await loadFetchConfig(repoDir), outputDir: join(workDir, 'layouts') });
  const pushed = await pushImage(built.layoutDir, parseRegistryTarget(`${registry.address}/brl/control`));
  control = { reference: pushed.reference, layerDigest: built.layer.digest, layoutDir: built.layoutDir };
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

/** The control image with another entrypoint (same layer), pushed to the test registry as brl/NAME; its pinned reference. */
async function controlWithEntrypoint(name: string, entrypoint: string[]): Promise<string> {
  const layoutDir = join(workDir, 'layouts', name);
  await cp(control.layoutDir, layoutDir, { recursive: true });
  const image = await readLayoutImage(layoutDir);
  const config = JSON.parse(await readFile(blobPath(layoutDir, image.parsed.config.digest), 'utf8')) as { config: Record<string, unknown> };
  config.config['Entrypoint'] = entrypoint;
  const configDescriptor = await writeBlob(layoutDir, image.parsed.config.mediaType, Buffer.from(JSON.stringify(config)));
  const manifest = await writeBlob(layoutDir, image.manifest.mediaType, Buffer.from(JSON.stringify({ ...image.parsed, config: configDescriptor })));
  await writeIndex(layoutDir, manifest, name);
  return (await pushImage(layoutDir, parseRegistryTarget(`${registry.address}/brl/${name}`))).reference;
}

/** Runs a host container until `until` holds for the statuses so far (or 60 s pass), then stops it. */
async function runUntil(options: { name: string; source: string; superpowered?: boolean; root?: string }, until: (statuses: HostContainerStatus[]) => boolean | Promise<boolean>): Promise<{ statuses: HostContainerStatus[]; lines: string[]; stateDir: string; containerDir: string; stop(): Promise<void> }> {
  const stateDir = join(workDir, 'run', options.name);
  const containerDir = join(workDir, 'local', options.name);
  const statuses: HostContainerStatus[] = [];
  /** What host-ctr logs: its own lines and the container's output. */
  const lines: string[] = [];
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
    log: (line) => lines.push(line),
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
  return { statuses, lines, stateDir, containerDir, stop };
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

  // No API socket in the test's host root: control-start says so on stderr, once per start.
  const noApi = 'control (stderr): brl control container: no answer from the host API on /run/api.sock (yet)';
  const said = (): number => run.lines.filter((line) => line === noApi).length;
  for (const deadline = Date.now() + 30_000; said() < 1 && Date.now() < deadline; ) await sleep(100);
  containerd.ctr('task', 'kill', '-s', 'KILL', 'control');
  for (const deadline = Date.now() + 30_000; (runningCount(run.statuses) < 2 || said() < 2) && Date.now() < deadline; ) await sleep(100);
  await run.stop();
  const states = run.statuses.map((status) => status.state);
  t.is(runningCount(run.statuses), 2, `restarted once: ${states.join(' → ')}`);
  const exited = run.statuses.find((status) => status.state === 'exited');
  t.is(exited?.message, 'exit status 137', 'SIGKILL seen as the exit status');
  t.is(states.at(-1), 'stopped');
  t.is(said(), 2, `the task's output, from both starts, in host-ctr's log: ${run.lines.join('\n')}`);
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

containerTest('host-ctr passes the container\'s stdout and stderr to its own stderr a line at a time, prefixed; a line over the limit is cut; the next start\'s output comes too; no file grows in the state directory', async (t) => {
  const script = [
    // Counts the starts in the container's own directory, which outlives the task.
    'n=$(cat /.bottlerocket/host-containers/current/starts 2>/dev/null || echo 0); n=$((n + 1)); echo $n > /.bottlerocket/host-containers/current/starts',
    'echo "start $n on stdout"',
    'echo "start $n on stderr" >&2',
    `head -c ${MAX_LINE_BYTES + 5000} /dev/zero | tr "\\0" x; echo END`,
    'echo "after the long line, start $n"',
    'exit 3',
  ].join('\n');
  const source = await controlWithEntrypoint('talker', ['/bin/sh', '-c', script]);
  const root = join(workDir, 'talker-root');
  const stateDir = join(workDir, 'run', 'talker');
  await mkdir(root, { recursive: true });
  let stderr = '';
  const controller = new AbortController();
  const exit = hostCtrMain([
    'run', '--container-id=talker', `--source=${source}`, `--containerd-socket=${containerd.socket}`,
    `--registry-config=${join(workDir, 'no-host-ctr.toml')}`, `--root=${root}`, `--state-dir=${stateDir}`,
  ], { stderr: (text) => void (stderr += text), signal: controller.signal });
  try {
    for (const deadline = Date.now() + 60_000; !stderr.includes('talker: after the long line, start 2\n') && Date.now() < deadline; ) await sleep(100);
  } finally {
    controller.abort();
  }
  t.is(await exit, 0);

  const lines = stderr.split('\n');
  const cut = `talker: ${'x'.repeat(MAX_LINE_BYTES)}${cutMarker(MAX_LINE_BYTES)}`;
  for (const n of [1, 2]) {
    t.true(lines.includes(`talker: start ${n} on stdout`), `start ${n}'s stdout in host-ctr's stderr:\n${stderr.slice(0, 3000)}`);
    t.true(lines.includes(`talker (stderr): start ${n} on stderr`), `start ${n}'s stderr, marked as such`);
    t.true(lines.includes(`talker: after the long line, start ${n}`), `the line after the cut one, start ${n}`);
  }
  t.is(lines.filter((line) => line === cut).length, 2, 'the long line cut at the limit, with the marker, once per start');
  t.false(stderr.includes('END'), 'the rest of the cut line dropped');
  t.true(lines.indexOf('talker: after the long line, start 1') < lines.indexOf('host container talker: exited: exit status 3'), 'the last output comes before the exit status');
  t.true(lines.some((line) => /^host container talker: running: pid \d+$/.test(line)), 'host-ctr\'s own lines stay as they were');
  t.deepEqual((await readdir(stateDir)).sort(), ['talker.status.json', 'talker.stderr', 'talker.stdout'], 'no log file');
  for (const name of ['talker.stdout', 'talker.stderr']) t.true((await stat(join(stateDir, name))).isFIFO(), `${name} is a FIFO`);
});

/** The host-ctr program itself running NAME from SOURCE, its stderr a pipe to the test; killed at the test's end if still there. */
function spawnHostCtr(t: { teardown(fn: () => Promise<void>): void }, name: string, source: string, root: string, collect = true): { child: ReturnType<typeof spawn>; output: Readable; stderr: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [
    join(repoDir, 'src/bin/host-ctr.ts'), 'run', `--container-id=${name}`, `--source=${source}`, `--containerd-socket=${containerd.socket}`,
    `--registry-config=${join(workDir, 'no-host-ctr.toml')}`, `--root=${root}`, `--state-dir=${join(workDir, 'run', name)}`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const output = child.stderr as Readable;
  let text = '';
  if (collect) {
    output.on('data', (chunk: Buffer) => {
      if (text.length < 1_000_000) text += chunk.toString('utf8');
    });
  }
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    // One that buffered without bound may be too far gone to stop by itself.
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  });
  return { child, output, stderr: () => text, exited };
}

containerTest('a host-ctr that is killed leaves the task running; the next one takes it over, as upstream\'s does, and passes on what it wrote in between', async (t) => {
  const source = await controlWithEntrypoint('ticker', ['/bin/sh', '-c', 'trap "exit 0" TERM; i=0; while :; do i=$((i + 1)); echo "tick $i"; sleep 0.1; done']);
  const root = join(workDir, 'ticker-root');
  await mkdir(root, { recursive: true });
  const ticks = (text: string): number[] => [...text.matchAll(/^ticker: tick (\d+)$/gm)].map((match) => Number(match[1]));
  const first = spawnHostCtr(t, 'ticker', source, root);
  for (const deadline = Date.now() + 60_000; ticks(first.stderr()).length < 5 && Date.now() < deadline; ) await sleep(100);
  const pid = /host container ticker: running: pid (\d+)/.exec(first.stderr())?.[1];
  first.child.kill('SIGKILL');
  await first.exited;
  const seen = ticks(first.stderr());
  // Meanwhile the container goes on writing into the pipes.
  await sleep(1500);
  t.regex(containerd.ctr('task', 'ls'), new RegExp(`^ticker\\s+${pid}\\s+RUNNING`, 'm'), 'the task outlives the host-ctr that was killed');

  const second = spawnHostCtr(t, 'ticker', source, root);
  for (const deadline = Date.now() + 60_000; ticks(second.stderr()).length < 20 && Date.now() < deadline; ) await sleep(100);
  second.child.kill('SIGTERM');
  t.is(await second.exited, 0);
  t.regex(second.stderr(), new RegExp(`^host container ticker: running: pid ${pid}, left running by an earlier host-ctr and taken over$`, 'm'));
  const after = ticks(second.stderr());
  t.true(after.length >= 20, second.stderr().slice(0, 2000));
  t.is(after[0], (seen.at(-1) as number) + 1, `the second host-ctr goes on where the first stopped (first saw up to ${seen.at(-1)}), with what was written in between`);
  t.deepEqual(after, after.map((_, index) => (after[0] as number) + index), 'nothing lost or repeated');
  t.regex(second.stderr(), /host container ticker: stopped: stopped/);
  t.is(containerd.ctr('containers', 'ls', '-q').trim(), '', 'stopping removed it');
});

/** Resident memory of a process, in MiB. */
async function rssMiB(pid: number): Promise<number> {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1]) / 1024;
}

containerTest('a container that writes faster than host-ctr\'s stderr is read is held back: host-ctr\'s memory stays flat, and the output resumes when the reader does', async (t) => {
  // Lines of 1000 bytes, as fast as the container can write them.
  const source = await controlWithEntrypoint('spewer', ['/bin/sh', '-c', 'yes "$(head -c 1000 /dev/zero | tr "\\0" y)"']);
  const root = join(workDir, 'spewer-root');
  await mkdir(root, { recursive: true });
  // The program itself, its stderr a pipe this test stops reading, as a journal that falls behind.
  const { child, output, exited } = spawnHostCtr(t, 'spewer', source, root, false);
  let received = 0;
  let head = '';
  const count = (chunk: Buffer): void => {
    received += chunk.length;
    if (head.length < 4096) head += chunk.toString('utf8');
  };
  output.on('data', count);
  for (const deadline = Date.now() + 60_000; received < 10_000_000 && Date.now() < deadline; ) await sleep(100);
  t.true(received >= 10_000_000, `10 MB of output came through: ${head.slice(0, 1000)}`);
  t.regex(head, new RegExp(`^spewer: ${'y'.repeat(1000)}$`, 'm'));

  output.off('data', count);
  output.pause();
  await sleep(2000);
  const before = await rssMiB(child.pid as number);
  await sleep(4000);
  const after = await rssMiB(child.pid as number);
  t.log(`RSS ${before.toFixed(1)} → ${after.toFixed(1)} MiB, ${(received / 1e6).toFixed(0)} MB before the pause`);
  if (!t.true(after - before < 16, `host-ctr's memory while nobody reads its stderr: ${before.toFixed(1)} → ${after.toFixed(1)} MiB`)) return;

  const resumedFrom = received;
  output.on('data', count);
  output.resume();
  for (const deadline = Date.now() + 30_000; received < resumedFrom + 10_000_000 && Date.now() < deadline; ) await sleep(100);
  t.true(received >= resumedFrom + 10_000_000, 'the output flows again');
  child.kill('SIGTERM');
  t.is(await exited, 0);
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
