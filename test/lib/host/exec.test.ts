import test, { type ExecutionContext } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import WebSocket from 'ws';
import { main } from '../../../src/lib/host/apiclient/main.ts';
import type { ExecStreams } from '../../../src/lib/host/apiclient/exec.ts';
import { processLauncher } from '../../helpers/process-launcher.ts';
import type { ExecLauncher } from '../../../src/lib/host/exec/launcher.ts';
import { startServer } from './_root.ts';

interface ExecRun {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs apiclient's main() with the given stdin; stdout collects the remote command's bytes. */
async function apiclient(socket: string, args: string[], stdin: Readable, terminal: { rows: number; cols: number } | undefined = undefined): Promise<ExecRun> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk));
  let stderr = '';
  const streams: ExecStreams = {
    stdin,
    stdout: Object.assign(out, terminal ? { isTTY: true, rows: terminal.rows, columns: terminal.cols } : {}),
    onResize: () => () => undefined,
  };
  const code = await main(['-s', socket, ...args], {
    stdout: (text) => chunks.push(Buffer.from(text)),
    stderr: (text) => (stderr += text),
    readStdin: async () => '',
    execStreams: streams,
  });
  return { code, stdout: Buffer.concat(chunks), stderr };
}

async function server(t: ExecutionContext, launcher: ExecLauncher = processLauncher(['admin'])): Promise<string> {
  const { server: api } = await startServer(t, { execLauncher: launcher });
  return api.socketPath;
}

/** A raw WebSocket on the API socket, for what apiclient never sends. */
async function rawSession(socket: string): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }>; texts: string[] }> {
  const ws = new WebSocket(`ws+unix://${socket}:/exec`);
  const texts: string[] = [];
  ws.on('message', (data, isBinary) => {
    if (!isBinary) texts.push(data.toString());
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, closed, texts };
}

test('apiclient exec runs a command with pipes: stdin in, stdout and stderr out, its exit code back', async (t) => {
  const socket = await server(t);
  const run = await apiclient(socket, ['exec', 'admin', 'sh', '-c', 'cat; echo to-stderr >&2; exit 3'], Readable.from([Buffer.from('hello\n')]));
  t.is(run.code, 3, run.stderr);
  t.is(run.stdout.toString(), 'hello\nto-stderr\n');
});

test('apiclient exec passes the command\'s own dashed options through, not as apiclient\'s', async (t) => {
  const socket = await server(t);
  const run = await apiclient(socket, ['exec', '-T', 'admin', 'ls', '-s', '-d', '/'], Readable.from([]));
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout.toString(), /^\d+ \/\n$/);
});

test('3,000 small stdin messages pass the server\'s 1,024-message window in order, byte for byte', async (t) => {
  const socket = await server(t);
  const chunks = Array.from({ length: 3000 }, (_, index) => Buffer.from(`${index}:${randomBytes(24).toString('hex')}\n`));
  const expected = createHash('sha256').update(Buffer.concat(chunks)).digest('hex');
  // One message per chunk: a stream that hands them over one by one, as a slow terminal would.
  const stdin = new Readable({ read() {} });
  let next = 0;
  const feed = (): void => {
    let more = true;
    while (next < chunks.length && more) {
      more = stdin.push(chunks[next]);
      next += 1;
    }
    if (next < chunks.length) setImmediate(feed);
    else stdin.push(null);
  };
  setImmediate(feed);
  const run = await apiclient(socket, ['exec', 'admin', 'sha256sum'], stdin);
  t.is(run.code, 0, run.stderr);
  t.is(run.stdout.toString().split(' ')[0], expected);
});

test('a terminal session gets a terminal of the client\'s size', async (t) => {
  const socket = await server(t);
  const run = await apiclient(socket, ['exec', '-t', 'admin', 'sh', '-c', 'stty size; [ -t 0 ] && [ -t 1 ] && echo tty'], Readable.from([]), { rows: 41, cols: 133 });
  t.is(run.code, 0, run.stderr);
  t.is(run.stdout.toString().replaceAll('\r', ''), '41 133\ntty\n');
});

test('a command killed by a signal exits 128 + n', async (t) => {
  const socket = await server(t);
  const run = await apiclient(socket, ['exec', 'admin', 'sh', '-c', 'kill -TERM $$'], Readable.from([]));
  t.is(run.code, 143);
});

test('an unknown target fails with the runtime\'s reason and exit 1; without a runtime every exec is refused', async (t) => {
  const socket = await server(t);
  const run = await apiclient(socket, ['exec', 'nosuch', 'true'], Readable.from([]));
  t.is(run.code, 1);
  t.regex(run.stderr, /\[ERROR\] no host container named 'nosuch'/);

  const { server: bare } = await startServer(t);
  const refused = await apiclient(bare.socketPath, ['exec', 'admin', 'true'], Readable.from([]));
  t.is(refused.code, 1);
  t.regex(refused.stderr, /cannot exec in 'admin': this host runs no host containers/);
});

test('usage errors: no target, no command, unknown exec option', async (t) => {
  const socket = await server(t);
  for (const args of [['exec'], ['exec', 'admin'], ['exec', '-x', 'admin', 'true']]) {
    const run = await apiclient(socket, args, Readable.from([]));
    t.is(run.code, 2, args.join(' '));
  }
});

test('protocol violations close the session with the upstream codes', async (t) => {
  const socket = await server(t);
  const early = await rawSession(socket);
  early.ws.send(Buffer.from('data'), { binary: true });
  t.is((await early.closed).code, 1008);

  const garbled = await rawSession(socket);
  garbled.ws.send('{"Initialize": ');
  t.is((await garbled.closed).code, 1007);

  const twice = await rawSession(socket);
  const init = JSON.stringify({ Initialize: { command: ['sleep', '30'], target: 'admin', tty: null } });
  twice.ws.send(init);
  twice.ws.send(init);
  t.is((await twice.closed).code, 1008);

  // A command that never reads stdin: the client ignores the window and is cut off.
  const flood = await rawSession(socket);
  flood.ws.send(init);
  for (let index = 0; index < 1200; index += 1) flood.ws.send(Buffer.alloc(70_000), { binary: true });
  const closed = await flood.closed;
  t.is(closed.code, 1009);
  t.regex(closed.reason, /1024 messages outstanding/);
  t.true(flood.texts.some((text) => text.includes('"max_messages_outstanding":1024')));
});

test('a client that goes away takes its command with it', async (t) => {
  const socket = await server(t);
  const session = await rawSession(socket);
  const pidFile = join(process.env.TMPDIR ?? '/tmp', `exec-${process.pid}-${Date.now()}.pid`);
  session.ws.send(JSON.stringify({ Initialize: { command: ['sh', '-c', `echo $$ > ${pidFile}; exec sleep 300`], target: 'admin', tty: null } }));
  let pid = 0;
  for (let waited = 0; pid === 0 && waited < 10_000; waited += 50) {
    pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (pid === 0) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.true(pid > 0);
  session.ws.terminate();
  let alive = true;
  for (let waited = 0; alive && waited < 10_000; waited += 50) {
    try {
      process.kill(pid, 0);
      await new Promise((resolve) => setTimeout(resolve, 50));
    } catch {
      alive = false;
    }
  }
  t.false(alive, `pid ${pid} still runs after its client went away`);
});
