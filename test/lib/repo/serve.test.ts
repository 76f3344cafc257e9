import test from 'ava';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { parseRange, serveDirectory } from '../../../src/lib/repo/serve.ts';
import { tempDir } from './helpers.ts';

function rawGet(url: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const req = request({ host: target.hostname, port: target.port, path, method: 'GET' }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

test('serves files with byte ranges, HEAD, 404 and 416, and never outside the directory', async (t) => {
  const dir = tempDir();
  mkdirSync(join(dir, 'targets'));
  const bytes = Buffer.from('0123456789abcdef');
  writeFileSync(join(dir, 'targets', 'file.bin'), bytes);
  writeFileSync(join(dir, '..', 'outside-secret'), 'secret');
  const server = await serveDirectory(dir);
  t.teardown(() => server.close());

  const full = await fetch(`${server.url}targets/file.bin`);
  t.is(full.status, 200);
  t.is(full.headers.get('accept-ranges'), 'bytes');
  t.deepEqual(Buffer.from(await full.arrayBuffer()), bytes);

  const middle = await fetch(`${server.url}targets/file.bin`, { headers: { range: 'bytes=4-7' } });
  t.is(middle.status, 206);
  t.is(middle.headers.get('content-range'), 'bytes 4-7/16');
  t.is(await middle.text(), '4567');

  const tail = await fetch(`${server.url}targets/file.bin`, { headers: { range: 'bytes=-3' } });
  t.is(await tail.text(), 'def');
  const open = await fetch(`${server.url}targets/file.bin`, { headers: { range: 'bytes=10-' } });
  t.is(await open.text(), 'abcdef');

  const beyond = await fetch(`${server.url}targets/file.bin`, { headers: { range: 'bytes=16-20' } });
  t.is(beyond.status, 416);
  t.is(beyond.headers.get('content-range'), 'bytes */16');

  const head = await fetch(`${server.url}targets/file.bin`, { method: 'HEAD' });
  t.is(head.headers.get('content-length'), '16');
  t.is((await fetch(`${server.url}targets/missing`)).status, 404);
  t.is((await fetch(`${server.url}targets/file.bin`, { method: 'PUT', body: 'x' })).status, 405);
  t.is(await rawGet(server.url, '/../outside-secret'), 404);
  t.is(await rawGet(server.url, '/%2e%2e/outside-secret'), 404);
  // Sent as raw request targets: `new URL` on the client would normalise these before the server saw them.
  for (const probe of ['/..%2Foutside-secret', '/%2e%2e%2Foutside-secret', '/targets/..%2F..%2Foutside-secret', '/targets%2F..%2F..%2Foutside-secret', '/..%5Coutside-secret', '/%252e%252e%252Foutside-secret']) {
    t.is(await rawGet(server.url, probe), 404, probe);
  }
  // A request target that is not a path at all is refused outright.
  t.is(await rawGet(server.url, '//..%2Foutside-secret'), 400);
});

test('range parsing follows RFC 9110 for single ranges', (t) => {
  t.deepEqual(parseRange('bytes=0-0', 10), [0, 0]);
  t.deepEqual(parseRange('bytes=5-100', 10), [5, 9]);
  t.deepEqual(parseRange('bytes=-100', 10), [0, 9]);
  t.is(parseRange('bytes=10-', 10), 'unsatisfiable');
  t.is(parseRange('bytes=0-1,3-4', 10), undefined);
  t.is(parseRange('items=0-1', 10), undefined);
});

test('a port already in use is a usage error with a hint', async (t) => {
  const first = await serveDirectory(tempDir());
  t.teardown(() => first.close());
  const port = Number(new URL(first.url).port);
  await t.throwsAsync(serveDirectory(tempDir(), { port }), { message: new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE`) });
});

test('a symlink inside the directory never serves a file outside it; a link within it still serves', async (t) => {
  const dir = tempDir();
  mkdirSync(join(dir, 'targets'));
  writeFileSync(join(dir, 'targets', 'inside.bin'), 'inside');
  const outside = join(dir, '..', `outside-${Date.now()}`);
  writeFileSync(outside, 'secret');
  symlinkSync(outside, join(dir, 'targets', 'escape.bin'));
  symlinkSync('inside.bin', join(dir, 'targets', 'alias.bin'));
  const server = await serveDirectory(dir);
  t.teardown(() => server.close());
  t.is((await fetch(`${server.url}targets/escape.bin`)).status, 404);
  t.is(await (await fetch(`${server.url}targets/alias.bin`)).text(), 'inside');
});
