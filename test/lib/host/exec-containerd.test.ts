// `/exec` on the real runtime: apiclient exec through the apiserver into a host container run by
// Debian's containerd 1.6 and runc on this machine. The container's root is a temp directory with
// this machine's /usr bound in read-only (sh, cat, stty), so no image is built; its spec is the one
// host-ctr gives host containers. ctr and /proc are the oracles for what runs.
import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { main } from '../../../src/lib/host/apiclient/main.ts';
import type { ExecStreams } from '../../../src/lib/host/apiclient/exec.ts';
import { ContainerdExecLauncher, execId, execProcessSpec } from '../../../src/lib/host/exec/containerd-launcher.ts';
import { hostContainerdLauncher } from '../../../src/lib/host/exec/host-containerd.ts';
import type { ExecLauncher } from '../../../src/lib/host/exec/launcher.ts';
import { cleanUpContainer } from '../../../src/lib/host/host-ctr/run.ts';
import { hostContainerSpec } from '../../../src/lib/host/host-ctr/runtime-spec.ts';
import { startContainerd, type TestContainerd } from '../host-ctr/containerd.ts';
import { startServer } from './_root.ts';

const started = await startContainerd();
const refused = 'refused' in started ? started.refused : undefined;
if (refused !== undefined) console.warn(`containerd exec tests skipped: ${refused}`);
const containerTest = refused === undefined ? test.serial : test.serial.skip;
const containerd = started as TestContainerd;

// runc's state directory is per namespace on the machine, shared with other tests' containerds: names of our own.
const admin = `exec-admin-${process.pid}`;
const stopped = `exec-stopped-${process.pid}`;
let workDir: string;
let launcher: ContainerdExecLauncher;
let fifoParent: string;

/** A running host container named `name` whose process 1 is `sleep infinity`. */
async function runContainer(name: string): Promise<void> {
  const rootfs = join(workDir, name, 'rootfs');
  await mkdir(join(rootfs, 'usr'), { recursive: true });
  for (const link of ['bin', 'lib', 'lib64', 'sbin']) await symlink(`usr/${link}`, join(rootfs, link));
  const spec = hostContainerSpec({
    name,
    superpowered: false,
    image: { created: '1970-01-01T00:00:00Z', architecture: 'amd64', os: 'linux', config: { Entrypoint: ['sleep', 'infinity'] }, rootfs: { type: 'layers', diff_ids: [] }, history: [] },
    host: { root: join(workDir, name, 'host'), containerDir: join(workDir, name, 'local') },
  }) as { mounts: unknown[] };
  await mkdir(join(workDir, name, 'local'), { recursive: true });
  spec.mounts.push({ destination: '/usr', type: 'bind', source: '/usr', options: ['rbind', 'rprivate', 'ro'] });
  await containerd.client.call('containers', 'Create', {
    container: {
      id: name,
      runtime: { name: 'io.containerd.runc.v2' },
      spec: { type_url: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify(spec)) },
    },
  });
  await containerd.client.call('tasks', 'Create', { container_id: name, rootfs: [{ type: 'bind', source: rootfs, options: ['rbind', 'rw'] }] });
  await containerd.client.call('tasks', 'Start', { container_id: name });
}

test.before(async () => {
  if (refused !== undefined) return;
  workDir = await mkdtemp(join(tmpdir(), 'brl-exec-containerd-'));
  fifoParent = join(workDir, 'fifos');
  await mkdir(fifoParent);
  launcher = new ContainerdExecLauncher({ socketPath: containerd.socket, fifoParent });
  await runContainer(admin);
  // A container without a running task.
  await containerd.client.call('containers', 'Create', {
    container: { id: stopped, runtime: { name: 'io.containerd.runc.v2' }, spec: { type_url: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from('{}') } },
  });
});

test.after.always(async () => {
  if (refused !== undefined) return;
  launcher.close();
  // A task left in containerd keeps its shim alive after containerd stops.
  await cleanUpContainer(containerd.client, admin).catch(() => undefined);
  await cleanUpContainer(containerd.client, stopped).catch(() => undefined);
  await containerd.stop();
  await rm(workDir, { recursive: true, force: true });
});

test('exec IDs are upstream\'s apiexec-<16 alnum>; the process spec is the container\'s with the command, TERM=screen and the terminal\'s size', (t) => {
  const ids = new Set(Array.from({ length: 100 }, () => execId()));
  t.is(ids.size, 100);
  for (const id of ids) t.regex(id, /^apiexec-[A-Za-z0-9]{16}$/);
  const container = { process: { user: { uid: 7, gid: 7 }, cwd: '/home', args: ['init'], env: ['PATH=/bin', 'TERM=xterm'], terminal: false } };
  t.deepEqual(execProcessSpec(container, { command: ['sh', '-c', 'true'], target: 'admin', tty: { size: { rows: 3, cols: 4 } } }), {
    user: { uid: 7, gid: 7 }, cwd: '/home', args: ['sh', '-c', 'true'], env: ['PATH=/bin', 'TERM=screen'], terminal: true, consoleSize: { height: 3, width: 4 },
  });
  t.deepEqual(execProcessSpec(container, { command: ['true'], target: 'admin', tty: null }).terminal, false);
});

interface ExecRun {
  code: number;
  stdout: string;
  stderr: string;
}

async function apiclient(t: ExecutionContext, args: string[], stdin: Readable, terminal?: { rows: number; cols: number }, execLauncher: ExecLauncher = launcher): Promise<ExecRun> {
  const { server } = await startServer(t, { execLauncher });
  const out = new PassThrough();
  let stdout = '';
  out.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  let stderr = '';
  const streams: ExecStreams = {
    stdin,
    stdout: Object.assign(out, terminal ? { isTTY: true, rows: terminal.rows, columns: terminal.cols } : {}),
    onResize: () => () => undefined,
  };
  const code = await main(['-s', server.socketPath, ...args], {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    readStdin: async () => '',
    execStreams: streams,
  });
  return { code, stdout, stderr };
}

/** The command lines of the admin container's processes, by host PID as ctr lists them. */
function containerProcesses(): string[] {
  return containerd.ctr('task', 'ps', admin).split('\n').slice(1).filter(Boolean).map((line) => {
    const pid = line.trim().split(/\s+/)[0] as string;
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    } catch {
      return '';
    }
  }).filter(Boolean);
}

containerTest('apiclient exec with pipes: output, stdin through cat, stderr, the exit code; the exec process and its FIFOs are gone afterwards', async (t) => {
  const run = await apiclient(t, ['exec', '-T', admin, 'sh', '-c', 'echo hi; cat; echo "TERM=$TERM"; echo err >&2; exit 7'], Readable.from([Buffer.from('from stdin\n')]));
  t.is(run.code, 7, run.stderr);
  // stdout and stderr are separate FIFOs: their lines interleave in either order.
  t.is(run.stdout.replace('err\n', ''), 'hi\nfrom stdin\nTERM=screen\n');
  t.true(run.stdout.includes('err\n'), run.stdout);
  for (const deadline = Date.now() + 5000; (await readdir(fifoParent)).length > 0 && Date.now() < deadline; ) await sleep(100);
  t.deepEqual(await readdir(fifoParent), [], 'the FIFO directory is removed');
  t.deepEqual(containerProcesses(), ['sleep infinity'], 'only the container\'s own process is left');
});

containerTest('a command killed by a signal exits 128 + n', async (t) => {
  const run = await apiclient(t, ['exec', '-T', admin, 'sh', '-c', 'kill -TERM $$'], Readable.from([]));
  t.is(run.code, 143, run.stderr);
});

containerTest('apiclient exec -t: a real terminal of the client\'s size, TERM=screen', async (t) => {
  const run = await apiclient(t, ['exec', '-t', admin, 'sh', '-c', 'stty size; [ -t 0 ] && [ -t 1 ] && echo tty; echo "$TERM"'], Readable.from([]), { rows: 41, cols: 133 });
  t.is(run.code, 0, run.stderr);
  t.is(run.stdout.replaceAll('\r', ''), '41 133\ntty\nscreen\n');
});

containerTest('the apiserver\'s launcher: an unknown target and a container that is not running fail naming the target, exit 1; no socket, no host containers', async (t) => {
  const apiserverLauncher = hostContainerdLauncher(containerd.socket);
  const unknown = await apiclient(t, ['exec', 'nosuch', 'true'], Readable.from([]), undefined, apiserverLauncher);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /no host container named 'nosuch'/);
  const notRunning = await apiclient(t, ['exec', stopped, 'true'], Readable.from([]), undefined, apiserverLauncher);
  t.is(notRunning.code, 1);
  t.regex(notRunning.stderr, new RegExp(`host container '${stopped}' is not running \\(no task\\)`));
  const ran = await apiclient(t, ['exec', admin, 'sh', '-c', 'exit 5'], Readable.from([]), undefined, apiserverLauncher);
  t.is(ran.code, 5, ran.stderr);
  const noSocket = join(workDir, 'no-containerd.sock');
  const missing = await apiclient(t, ['exec', admin, 'true'], Readable.from([]), undefined, hostContainerdLauncher(noSocket));
  t.is(missing.code, 1);
  // (A close reason is cut at 123 bytes: the long temp path does not fit.)
  t.true(`cannot exec in '${admin}': this host runs no host containers (no ${noSocket})`.startsWith(/\[ERROR\] (.*)/.exec(missing.stderr)?.[1] ?? '-'), missing.stderr);
});

containerTest('a client that goes away takes the exec\'d process with it', async (t) => {
  const { server } = await startServer(t, { execLauncher: launcher });
  const ws = new WebSocket(`ws+unix://${server.socketPath}:/exec`);
  await new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const firstOutput = new Promise<string>((resolve) => ws.once('message', function onMessage(data, isBinary) {
    if (isBinary) resolve(data.toString());
    else ws.once('message', onMessage);
  }));
  ws.send(JSON.stringify({ Initialize: { command: ['sh', '-c', 'echo $$; exec sleep 1000'], target: admin, tty: null } }));
  const pid = Number((await firstOutput).trim());
  t.true(pid > 1, 'the shell reported its pid in the container');
  t.deepEqual(containerProcesses().sort(), ['sleep 1000', 'sleep infinity'], 'the command runs in the container');
  ws.terminate();
  for (const deadline = Date.now() + 10_000; containerProcesses().length > 1 && Date.now() < deadline; ) await sleep(100);
  t.deepEqual(containerProcesses(), ['sleep infinity'], 'the exec\'d process was killed');
  for (const deadline = Date.now() + 5000; (await readdir(fifoParent)).length > 0 && Date.now() < deadline; ) await sleep(100);
  t.deepEqual(await readdir(fifoParent), [], 'and cleaned up after');
});

containerTest('Winch resizes the terminal of a running command', async (t) => {
  const { server } = await startServer(t, { execLauncher: launcher });
  const ws = new WebSocket(`ws+unix://${server.socketPath}:/exec`);
  await new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject));
  let output = '';
  ws.on('message', (data, isBinary) => {
    if (isBinary) output += data.toString();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.send(JSON.stringify({ Initialize: { command: ['sh', '-c', 'stty -echo; stty size; read line; stty size'], target: admin, tty: { size: { rows: 24, cols: 80 } } } }));
  for (const deadline = Date.now() + 10_000; !output.includes('24 80') && Date.now() < deadline; ) await sleep(50);
  ws.send(JSON.stringify({ Winch: { rows: 50, cols: 120 } }));
  await sleep(500);
  ws.send(Buffer.from('go\r'));
  t.deepEqual(await closed, { code: 1000, reason: '0' });
  t.is(output.replaceAll('\r', ''), '24 80\n50 120\n');
});
