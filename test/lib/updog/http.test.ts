import test from 'ava';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defaultTransportOptions, getBytes, streamBody, HttpStatusError, type TransportOptions } from '../../../src/lib/updog/http.ts';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { FaultServer } from '../../helpers/fault-server.ts';

const options = (extra: Partial<TransportOptions> = {}): TransportOptions => ({
  ...defaultTransportOptions, initialBackoffMs: 1, maxBackoffMs: 5, idleTimeoutMs: 300, ...extra,
});

async function collect(generator: AsyncGenerator<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of generator) chunks.push(chunk);
  return Buffer.concat(chunks);
}

test('every request carries the query parameters sorted by name, read at request time', async (t) => {
  const urls: string[] = [];
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    urls.push(request.url ?? '');
    response.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const query: Record<string, string> = { version: '1.0.0', seed: '42' };
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/meta/timestamp.json`;
  await getBytes(base, options({ query: () => query }), 100);
  query.target = '1.1.0';
  query.migrations = 'a.lz4,manifest.json';
  await getBytes(base, options({ query: () => query }), 100);
  t.deepEqual(urls, ['/meta/timestamp.json?seed=42&version=1.0.0',
    '/meta/timestamp.json?migrations=a.lz4%2Cmanifest.json&seed=42&target=1.1.0&version=1.0.0']);
});

test('a server that ignores Range on resume is skipped forward, so the body stays continuous', async (t) => {
  const server = await FaultServer.start();
  t.teardown(() => server.close());
  const body = Buffer.from(Array.from({ length: 100_000 }, (_, index) => index % 251));
  const url = server.serve('/x', body, { range: false, faults: [{ kind: 'drop', bytes: 30_000 }] });
  t.true((await collect(streamBody(url, options(), { expectedLength: body.length }))).equals(body));
  t.is(server.requestsFor('/x').length, 2);
});

test('a body longer than the signed length is refused without retrying', async (t) => {
  const server = await FaultServer.start();
  t.teardown(() => server.close());
  const url = server.serve('/x', Buffer.alloc(1000));
  await t.throwsAsync(collect(streamBody(url, options(), { expectedLength: 999 })), { message: /longer than the 999 bytes the signed metadata declares/ });
  t.is(server.requestsFor('/x').length, 1);
});

test('404 is final, 503 is retried, and progress resets the attempt counter', async (t) => {
  const server = await FaultServer.start();
  t.teardown(() => server.close());
  await t.throwsAsync(getBytes(server.url('/missing'), options(), 100), { instanceOf: HttpStatusError });
  t.is(server.requestsFor('/missing').length, 1);
  const body = Buffer.alloc(50_000, 7);
  // Six failures in total, but never four in a row without a byte arriving.
  const url = server.serve('/y', body, { faults: [
    { kind: 'status', status: 503 }, { kind: 'status', status: 503 }, { kind: 'drop', bytes: 10_000 },
    { kind: 'status', status: 503 }, { kind: 'status', status: 503 }, { kind: 'drop', bytes: 10_000 },
  ] });
  t.true((await collect(streamBody(url, options(), { expectedLength: body.length }))).equals(body));
  const stuck = server.serve('/z', body, { faults: Array.from({ length: 4 }, () => ({ kind: 'status' as const, status: 503 })) });
  await t.throwsAsync(collect(streamBody(stuck, options(), { expectedLength: body.length })), { instanceOf: BrlError, message: /HTTP 503 \(4 attempts in a row without progress\)/ });
});

test('a prefix read asks for a range and stops there, even when the server sends everything', async (t) => {
  const server = await FaultServer.start();
  t.teardown(() => server.close());
  const body = Buffer.from(Array.from({ length: 100_000 }, (_, index) => index % 256));
  const { getPrefix } = await import('../../../src/lib/updog/http.ts');
  const ranged = server.serve('/r', body);
  t.true((await getPrefix(ranged, options(), 15)).equals(body.subarray(0, 15)));
  t.is(server.requestsFor('/r')[0]!.range, 'bytes=0-14');
  const whole = server.serve('/w', body, { range: false, faults: [{ kind: 'status', status: 503 }] });
  t.true((await getPrefix(whole, options(), 15)).equals(body.subarray(0, 15)));
  t.true((await getPrefix(server.serve('/short', Buffer.from('tiny')), options(), 15)).equals(Buffer.from('tiny')));
});

test('a server that drips bytes (never idle long enough to time out) is given up below the minimum rate, saying so', async (t) => {
  const server = createServer((_request: IncomingMessage, response: ServerResponse) => {
    response.writeHead(200, { 'content-length': String(1024 * 1024) });
    const drip = setInterval(() => response.write('x'), 50);
    response.on('close', () => clearInterval(drip));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/targets/root.ext4.lz4`;
  const started = Date.now();
  const error = await t.throwsAsync(collect(streamBody(url, options({ lowSpeedLimit: 100, lowSpeedTimeMs: 600 }), { expectedLength: 1024 * 1024 })), { instanceOf: BrlError });
  t.is(error?.code, 'DOWNLOAD_TOO_SLOW');
  t.regex(error?.message ?? '', /root\.ext4\.lz4: the server sent \d+ bytes in \d+ s, below the 100 bytes\/s updog waits for; giving up/);
  t.true(Date.now() - started < 3000, 'given up after the window, not at the idle timeout or never');
});

test('a slow but steady server is not cut off', async (t) => {
  const body = Buffer.alloc(3000, 7);
  const server = createServer((_request: IncomingMessage, response: ServerResponse) => {
    response.writeHead(200, { 'content-length': String(body.length) });
    let sent = 0;
    const tick = setInterval(() => {
      response.write(body.subarray(sent, sent + 150));
      sent += 150;
      if (sent >= body.length) {
        clearInterval(tick);
        response.end();
      }
    }, 50);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
  t.deepEqual(await collect(streamBody(url, options({ lowSpeedLimit: 1000, lowSpeedTimeMs: 400 }), { expectedLength: body.length })), body);
});
