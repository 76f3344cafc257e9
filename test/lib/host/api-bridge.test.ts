import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { apiRequest } from '../../../src/lib/host/apiclient/request.ts';
import { encodeData, encodeFrame, FrameDecoder, FrameType, MAX_PAYLOAD_BYTES } from '../../../src/lib/host/api-bridge/protocol.ts';
import { startGuestBridge, startHostBridge } from '../../../src/lib/host/api-bridge/bridge.ts';
import { repoDir } from '../../helpers/cli.ts';
import { startServer } from './_root.ts';

/** A connected socket pair standing in for the virtio-serial port (guest) and QEMU's chardev (host). */
async function channelPair(dir: string): Promise<[Socket, Socket]> {
  const path = join(dir, 'channel.sock');
  const server = createServer();
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const client = connect(path);
  const pair: [Socket, Socket] = [await accepted, client];
  server.close();
  return pair;
}

/** A host bridge serving `<dir>/api.sock` over a fresh channel; the guest end is the caller's. */
async function hostBridge(t: ExecutionContext) {
  const dir = await mkdtemp(join(tmpdir(), 'brl-bridge-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const [guestEnd, hostEnd] = await channelPair(dir);
  t.teardown(() => { guestEnd.destroy(); hostEnd.destroy(); });
  const hostSocket = join(dir, 'api.sock');
  const host = await startHostBridge(hostSocket, hostEnd);
  t.teardown(() => host.close());
  return { guestEnd, hostSocket, host };
}

test('frames survive any split of the stream, and large payloads are cut at the frame limit', (t) => {
  const big = Buffer.alloc(MAX_PAYLOAD_BYTES * 2 + 5, 7);
  const stream = Buffer.concat([encodeFrame(FrameType.hello, 0), encodeFrame(FrameType.open, 3), ...encodeData(3, big), encodeFrame(FrameType.close, 3)]);
  const decoder = new FrameDecoder();
  const frames = [];
  for (let offset = 0; offset < stream.length; offset += 1000) frames.push(...decoder.push(stream.subarray(offset, offset + 1000)));
  t.deepEqual(frames.map((frame) => [frame.type, frame.connection, frame.payload.length]), [
    [FrameType.hello, 0, 0], [FrameType.open, 3, 0],
    [FrameType.data, 3, MAX_PAYLOAD_BYTES], [FrameType.data, 3, MAX_PAYLOAD_BYTES], [FrameType.data, 3, 5],
    [FrameType.close, 3, 0],
  ]);
  t.throws(() => new FrameDecoder().push(Buffer.from([9, 0, 0, 0, 0, 0, 0, 0, 0])), { message: /corrupt/ });
});

test('apiclient requests on the host socket reach the guest apiserver, many at once, each with its own answer', async (t) => {
  const { server, call } = await startServer(t);
  const { guestEnd, hostSocket, host } = await hostBridge(t);
  startGuestBridge(server.socketPath, guestEnd);
  await host.guestReady;

  const motds = Array.from({ length: 12 }, (_, index) => `hello ${index} ${'x'.repeat(index * 20_000)}`);
  await Promise.all(motds.map(async (motd, index) => {
    const patch = await apiRequest(hostSocket, 'PATCH', `/settings?tx=t${index}`, JSON.stringify({ motd }));
    t.is(patch.status, 204, patch.body);
    const pending = await apiRequest(hostSocket, 'GET', `/tx?tx=t${index}`);
    t.is((JSON.parse(pending.body) as { motd: string }).motd, motd, pending.body.slice(0, 100));
  }));
  const direct = await call('GET', '/os');
  const bridged = await apiRequest(hostSocket, 'GET', '/os');
  t.is(bridged.status, 200);
  t.is(bridged.body, direct.body);
});

test('before the guest says hello the host socket refuses, and a new hello drops connections of the old session', async (t) => {
  const { guestEnd, hostSocket, host } = await hostBridge(t);
  await t.throwsAsync(apiRequest(hostSocket, 'GET', '/os'));

  // Play the guest by hand: hello, then watch for the OPEN of a client that never gets an answer.
  const decoder = new FrameDecoder();
  const opened = new Promise<number>((resolve) => guestEnd.on('data', (chunk: Buffer) => {
    for (const frame of decoder.push(chunk)) if (frame.type === FrameType.open) resolve(frame.connection);
  }));
  guestEnd.write(encodeFrame(FrameType.hello, 0));
  await host.guestReady;
  const client = connect(hostSocket);
  const clientClosed = new Promise<void>((resolve) => client.on('close', () => resolve()));
  client.write('GET /os HTTP/1.1\r\n\r\n');
  t.true((await opened) > 0);
  guestEnd.write(encodeFrame(FrameType.hello, 0)); // the guest rebooted
  await clientClosed;
  t.true(client.destroyed, 'the old session\'s client was closed by the new hello');
});

test('after garbage on the channel the host bridge refuses, and a restarted guest bridge (a new hello) serves again', async (t) => {
  const { server } = await startServer(t);
  const { guestEnd, hostSocket, host } = await hostBridge(t);
  startGuestBridge(server.socketPath, guestEnd);
  await host.guestReady;
  t.is((await apiRequest(hostSocket, 'GET', '/os')).status, 200);
  // Bytes that are no frame (a type past CLOSE): the host drops the session and refuses clients.
  guestEnd.write(Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]));
  for (let attempt = 0; attempt < 50 && (await apiRequest(hostSocket, 'GET', '/os').then(() => true, () => false)); attempt++) await new Promise((resolve) => setTimeout(resolve, 20));
  await t.throwsAsync(apiRequest(hostSocket, 'GET', '/os'));
  // systemd restarts the guest's api-bridge, whose new session starts with a hello.
  guestEnd.removeAllListeners('data');
  startGuestBridge(server.socketPath, guestEnd);
  for (let attempt = 0; attempt < 50 && !(await apiRequest(hostSocket, 'GET', '/os').then(() => true, () => false)); attempt++) await new Promise((resolve) => setTimeout(resolve, 20));
  t.is((await apiRequest(hostSocket, 'GET', '/os')).status, 200);
});

test('drain waits for a bridged request to get its answer (apiclient reboot at shutdown), and returns at once when idle', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'brl-bridge-slow-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // A guest API that answers only after 300 ms, like a reboot route waiting for systemctl.
  const slowSocket = join(dir, 'slow.sock');
  let requestArrived: () => void = () => undefined;
  const arrived = new Promise<void>((resolve) => {
    requestArrived = resolve;
  });
  const slow = createServer((socket) => socket.once('data', () => {
    requestArrived();
    setTimeout(() => socket.end('HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n'), 300);
  }));
  await new Promise<void>((resolve) => slow.listen(slowSocket, resolve));
  t.teardown(() => slow.close());
  const { guestEnd, hostSocket, host } = await hostBridge(t);
  const guest = startGuestBridge(slowSocket, guestEnd);
  await host.guestReady;

  const started = Date.now();
  await guest.drain(5000);
  t.true(Date.now() - started < 100, 'idle: no wait');

  const answer = apiRequest(hostSocket, 'POST', '/actions/reboot');
  // Drain once the request is inside the guest API (not after a fixed pause: a loaded host is slow).
  await arrived;
  const draining = Date.now();
  await guest.drain(5000);
  t.true(Date.now() - draining >= 150, 'drain waited for the open connection');
  t.is((await answer).status, 204);
});

test('the api-bridge program ends on SIGTERM while its read of the port is blocked (systemd stops it at shutdown)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'brl-bridge-bin-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // A FIFO opened read-write blocks a thread-pool read, as the virtio-serial port does in the guest.
  const port = join(dir, 'port');
  execFileSync('mkfifo', [port]);
  const bridge = spawn(process.execPath, [join(repoDir, 'dist/bin/api-bridge.js'), '--port', port, '--socket-path', join(dir, 'api.sock')], { stdio: 'ignore' });
  t.teardown(() => bridge.kill('SIGKILL'));
  await sleep(1000);
  const started = Date.now();
  bridge.kill('SIGTERM');
  const [code, signal] = (await once(bridge, 'exit')) as [number | null, NodeJS.Signals | null];
  t.true(Date.now() - started < 10_000, `ended after ${Date.now() - started} ms`);
  t.deepEqual({ code, signal }, { code: null, signal: 'SIGTERM' });
});
