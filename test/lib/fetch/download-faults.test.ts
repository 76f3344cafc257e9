import test from 'ava';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { fetchExternalFiles, lookasidePath } from '../../../src/lib/fetch/index.ts';
import { FaultServer } from '../../helpers/fault-server.ts';
import { config, content, externalFile, fastNetwork, filesUnder, packageWith, sha512, tempDir } from './_fixtures.ts';

let server: FaultServer;
test.before(async () => {
  server = await FaultServer.start();
});
test.after.always(async () => {
  await server.close();
});

type Route = NonNullable<Parameters<FaultServer['serve']>[2]>;

/**
 * Serves a fresh random file at a unique path and fetches it as package "p" from upstream. `route`
 * may be a function of a wait until the client has stored bytes of the download, for cutting the
 * connection only after that.
 */
async function fetchWithFaults(t: { title: string }, route: Route | ((stored: () => Promise<void>) => Route), bytes = 256 * 1024) {
  const body = content(bytes);
  const path = `/${t.title.replace(/\W+/g, '-')}.tar.gz`;
  const cacheDir = await tempDir();
  const file = externalFile(server.url(path), body);
  const partialPath = join(cacheDir, file.fileName, file.sha512, `.${file.fileName}.part`);
  server.serve(path, body, typeof route === 'function' ? route(() => untilStored(partialPath)) : route);
  const run = () => fetchExternalFiles([packageWith('p', [file])], config(cacheDir), { progress: 'silent', network: fastNetwork });
  return { body, path, file, cacheDir, run };
}

/** Resolves once `path` holds bytes: the client has written part of the body to disk. */
async function untilStored(path: string): Promise<void> {
  for (let waitedMs = 0; waitedMs < 10_000; waitedMs += 10) {
    const size = await stat(path).then((info) => info.size, () => 0);
    if (size > 0) return;
    await sleep(10);
  }
  throw new Error(`${path} never received bytes`);
}

test('retries a 500 with backoff and then stores the verified file', async (t) => {
  const { body, path, file, cacheDir, run } = await fetchWithFaults(t, {
    faults: [
      { kind: 'status', status: 500 },
      { kind: 'status', status: 503 },
    ],
  });
  const [fetched] = await run();
  t.is(fetched?.source, 'upstream');
  t.deepEqual(await readFile(lookasidePath(cacheDir, file)), body);
  t.deepEqual(
    server.requestsFor(path).map((request) => request.status),
    [500, 503, 200],
  );
});

test('resumes a truncated body with a Range request from the bytes already on disk', async (t) => {
  const { body, path, file, cacheDir, run } = await fetchWithFaults(t, (stored) => ({ faults: [{ kind: 'truncate', bytes: 100_000, until: stored }] }));
  await run();
  t.is(sha512(await readFile(lookasidePath(cacheDir, file))), sha512(body));
  const [first, second] = server.requestsFor(path);
  t.is(first?.range, undefined);
  t.regex(second?.range ?? '', /^bytes=\d+-$/);
  t.true(Number(/\d+/.exec(second?.range ?? '')?.[0]) > 0);
  t.is(second?.status, 206);
  t.truthy(second?.ifRange, 'the resume carries If-Range so only the same bytes are continued');
});

test('resumes after the connection is reset mid-body', async (t) => {
  const { body, path, file, cacheDir, run } = await fetchWithFaults(t, (stored) => ({ faults: [{ kind: 'drop', bytes: 64 * 1024, until: stored }] }));
  await run();
  t.deepEqual(await readFile(lookasidePath(cacheDir, file)), body);
  t.deepEqual(
    server.requestsFor(path).map((request) => request.status),
    [200, 206],
  );
});

test('restarts from byte 0 when the server ignores Range', async (t) => {
  const { body, path, file, cacheDir } = await fetchWithFaults(t, (stored) => ({
    range: false,
    faults: [{ kind: 'drop', bytes: 50_000, until: stored }],
  }));
  await fetchExternalFiles([packageWith('p', [file])], config(cacheDir), { progress: 'silent', network: fastNetwork });
  t.deepEqual(await readFile(lookasidePath(cacheDir, file)), body);
  const requests = server.requestsFor(path);
  t.is(requests.length, 2);
  t.truthy(requests[1]?.range, 'a resume was attempted');
  t.is(requests[1]?.status, 200, 'the server sent the whole body again and it replaced the partial one');
});

test('a resumed download with a wrong digest is retried once from scratch', async (t) => {
  const { body, path, file, cacheDir, run } = await fetchWithFaults(t, (stored) => ({
    faults: [{ kind: 'truncate', bytes: 100_000, until: stored }, { kind: 'wrong-bytes' }],
  }));
  const [fetched] = await run();
  t.is(fetched?.source, 'upstream');
  t.deepEqual(await readFile(lookasidePath(cacheDir, file)), body);
  const requests = server.requestsFor(path);
  t.deepEqual(
    requests.map((request) => [request.status, request.range === undefined ? 'whole' : 'range']),
    [
      [200, 'whole'],
      [206, 'range'],
      [200, 'whole'],
    ],
  );
});

test('downloads run in parallel up to the configured jobs and no further', async (t) => {
  const local = await FaultServer.start();
  try {
    const files = Array.from({ length: 7 }, (_, index) => {
      const body = content(1000);
      return externalFile(local.serve(`/parallel-${index}.tar.gz`, body, { latencyMs: 400 }), body);
    });
    const cacheDir = await tempDir();
    await fetchExternalFiles(
      files.map((file, index) => packageWith(`p${index}`, [file])),
      config(cacheDir, { jobs: 3 }),
      { progress: 'silent', network: fastNetwork },
    );
    // Each response is held 400 ms (long even on a loaded host), so the server sees every request in flight at once.
    t.is(local.peakConcurrentRequests, 3);
  } finally {
    await local.close();
  }
});

test('retries when response headers do not arrive before the timeout', async (t) => {
  const { body, path, file, cacheDir } = await fetchWithFaults(t, { faults: [{ kind: 'slow-headers', ms: 3_000 }] });
  await fetchExternalFiles([packageWith('p', [file])], config(cacheDir), {
    progress: 'silent',
    network: { ...fastNetwork, timeoutMs: 1_000 },
  });
  t.deepEqual(await readFile(lookasidePath(cacheDir, file)), body);
  t.is(server.requestsFor(path).length, 2);
});

test('retries a body that stalls, resuming where it stopped', async (t) => {
  const { body, path, file, cacheDir } = await fetchWithFaults(t, { faults: [{ kind: 'stall', bytes: 32 * 1024 }] });
  await fetchExternalFiles([packageWith('p', [file])], config(cacheDir), {
    progress: 'silent',
    network: { ...fastNetwork, timeoutMs: 1_000 },
  });
  t.deepEqual(await readFile(lookasidePath(cacheDir, file)), body);
  t.is(server.requestsFor(path)[1]?.status, 206);
});

test('a slow but steady body within the idle timeout is fetched in one request', async (t) => {
  const { body, path, file, cacheDir, run } = await fetchWithFaults(t, { faults: [{ kind: 'slow-body', ms: 20, chunkBytes: 16 * 1024 }] }, 128 * 1024);
  await run();
  t.deepEqual(await readFile(lookasidePath(cacheDir, file)), body);
  t.is(server.requestsFor(path).length, 1);
});

test('wrong bytes are a sha512 mismatch naming the file and both digests, and leave nothing in the cache', async (t) => {
  const { body, file, cacheDir, run } = await fetchWithFaults(t, { faults: [{ kind: 'wrong-bytes' }] });
  const error = await t.throwsAsync(run, { instanceOf: BrlError });
  t.is(error?.code, 'SHA512_MISMATCH');
  t.is(error?.exitCode, 6);
  t.true(error?.message.includes(file.fileName));
  t.true(error?.message.includes(`expected ${sha512(body)}`));
  t.true(error?.message.includes(`got ${sha512(Buffer.from(body.map((byte) => 255 - byte)))}`));
  t.deepEqual(await filesUnder(cacheDir), []);
});

test('gives up after the configured attempts on persistent 5xx and leaves nothing behind', async (t) => {
  const { path, cacheDir, run } = await fetchWithFaults(t, {
    faults: Array.from({ length: 10 }, () => ({ kind: 'status' as const, status: 502 })),
  });
  const error = await t.throwsAsync(run, { instanceOf: BrlError });
  t.is(error?.code, 'FETCH_FAILED');
  t.regex(error?.message ?? '', /HTTP 502/);
  t.is(server.requestsFor(path).length, fastNetwork.attempts);
  t.deepEqual(await filesUnder(cacheDir), []);
});

test('does not retry a 404', async (t) => {
  const cacheDir = await tempDir();
  const body = content(10);
  const file = externalFile(server.url('/missing-404.tar.gz'), body);
  const error = await t.throwsAsync(
    fetchExternalFiles([packageWith('p', [file])], config(cacheDir), { progress: 'silent', network: fastNetwork }),
    { instanceOf: BrlError },
  );
  t.regex(error?.message ?? '', /HTTP 404/);
  t.is(server.requestsFor('/missing-404.tar.gz').length, 1);
});

test('a file already in the cache is not downloaded again', async (t) => {
  const { path, run } = await fetchWithFaults(t, {});
  await run();
  const [again] = await run();
  t.is(again?.source, 'cache');
  t.is(server.requestsFor(path).length, 1);
});

test('--verify re-hashes a cached file and replaces one that was corrupted', async (t) => {
  const { body, path, file, cacheDir, run } = await fetchWithFaults(t, {});
  await run();
  await writeFile(lookasidePath(cacheDir, file), 'corrupted');
  const [again] = await fetchExternalFiles([packageWith('p', [file])], config(cacheDir), { progress: 'silent', verify: true });
  t.is(again?.source, 'upstream');
  t.deepEqual(await readFile(lookasidePath(cacheDir, file)), body);
  t.is(server.requestsFor(path).length, 2);
});

test('sends a brl user agent', async (t) => {
  const { path, run } = await fetchWithFaults(t, {}, 10);
  await run();
  t.regex(server.requestsFor(path)[0]?.userAgent ?? '', /^brl\/\d+\.\d+\.\d+ fetch$/);
});

test('one file pinned by two packages is downloaded once and reported for both', async (t) => {
  const body = content(1000);
  const url = server.serve('/shared-1.0.tar.gz', body);
  const cacheDir = await tempDir();
  const file = externalFile(url, body);
  const fetched = await fetchExternalFiles([packageWith('a', [file]), packageWith('b', [file])], config(cacheDir), { progress: 'silent' });
  t.deepEqual(
    fetched.map((entry) => [entry.packageName, entry.path]),
    [
      ['a', join(cacheDir, 'shared-1.0.tar.gz', file.sha512, 'shared-1.0.tar.gz')],
      ['b', join(cacheDir, 'shared-1.0.tar.gz', file.sha512, 'shared-1.0.tar.gz')],
    ],
  );
  t.is(server.requestsFor('/shared-1.0.tar.gz').length, 1);
});

test('bytes received before a run gave up are resumed by the next run', async (t) => {
  const { body, path, file, cacheDir } = await fetchWithFaults(t, (stored) => ({ faults: [{ kind: 'drop', bytes: 150_000, until: stored }] }));
  const once = { ...fastNetwork, attempts: 1 };
  const packages = [packageWith('p', [file])];
  await t.throwsAsync(fetchExternalFiles(packages, config(cacheDir), { progress: 'silent', network: once }), { instanceOf: BrlError });
  const entryDir = join(cacheDir, file.fileName, file.sha512);
  t.deepEqual(await filesUnder(entryDir), [`.${file.fileName}.part`], 'only the partial file is left, under a dot name');

  await fetchExternalFiles(packages, config(cacheDir), { progress: 'silent', network: once });
  t.deepEqual(await readFile(lookasidePath(cacheDir, file)), body);
  t.deepEqual(await filesUnder(entryDir), [file.fileName]);
  const second = server.requestsFor(path)[1];
  t.is(second?.status, 206);
  t.true(Number(/\d+/.exec(second?.range ?? '')?.[0]) > 0);
});

test('a partial file locked by a live process is left alone; a stale lock is taken over', async (t) => {
  const { body, path, file, cacheDir, run } = await fetchWithFaults(t, {});
  const entryDir = join(cacheDir, file.fileName, file.sha512);
  await mkdir(entryDir, { recursive: true });
  const partPath = join(entryDir, `.${file.fileName}.part`);
  const lockPath = join(entryDir, `.${file.fileName}.lock`);
  // PID 1 is always alive: its partial bytes must not be touched.
  await writeFile(partPath, body.subarray(0, 1000));
  await writeFile(lockPath, '1\n');
  await run();
  t.deepEqual(await readFile(lookasidePath(cacheDir, file)), body);
  t.deepEqual(await readFile(partPath), body.subarray(0, 1000));
  t.is(server.requestsFor(path)[0]?.range, undefined);

  // A lock whose process is gone is stale: its bytes are resumed.
  await rm(lookasidePath(cacheDir, file));
  await writeFile(lockPath, '999999999\n');
  await run();
  t.deepEqual(await readFile(lookasidePath(cacheDir, file)), body);
  t.is(server.requestsFor(path)[1]?.range, 'bytes=1000-');
  t.deepEqual(await filesUnder(entryDir), [file.fileName]);
});
