import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { fetchExternalFiles, lookasidePath, lookasideUrl } from '../../../src/lib/fetch/index.ts';
import { FaultServer } from '../../helpers/fault-server.ts';
import { config, content, externalFile, fastNetwork, filesUnder, packageWith, sha512, tempDir } from './_fixtures.ts';

const run = promisify(execFile);
let server: FaultServer;

test.before(async () => {
  server = await FaultServer.start();
});
test.after.always(async () => {
  await server.close();
});

const quiet = { progress: 'silent' as const, network: fastNetwork };

test('tries lookaside caches in order and takes the first that serves the file, without touching upstream', async (t) => {
  const body = content(4096);
  const upstream = server.serve('/upstream/order-1.0.tar.gz', body);
  const file = externalFile(upstream, body);
  const second = server.serve(new URL(lookasideUrl(server.url('/mirror-b'), file)).pathname, body);
  const cacheDir = await tempDir();
  const [fetched] = await fetchExternalFiles(
    [packageWith('p', [file])],
    config(cacheDir, { lookasideCaches: [server.url('/mirror-a'), server.url('/mirror-b/')], upstreamFallback: true }),
    quiet,
  );
  t.is(fetched?.source, 'lookaside');
  t.is(fetched?.url, second);
  t.deepEqual(await readFile(lookasidePath(cacheDir, file)), body);
  const order = server.requests.filter((request) => request.path.includes('order-1.0')).map((request) => request.path.split('/')[1]);
  t.deepEqual(order, ['mirror-a', 'mirror-b']);
});

test('a lookaside cache serving wrong bytes is skipped for the next one', async (t) => {
  const body = content(4096);
  const file = externalFile(server.url('/upstream/skip-1.0.tar.gz'), body);
  server.serve(new URL(lookasideUrl(server.url('/bad-mirror'), file)).pathname, content(4096));
  server.serve(new URL(lookasideUrl(server.url('/good-mirror'), file)).pathname, body);
  const cacheDir = await tempDir();
  const [fetched] = await fetchExternalFiles(
    [packageWith('p', [file])],
    config(cacheDir, { lookasideCaches: [server.url('/bad-mirror'), server.url('/good-mirror')], upstreamFallback: false }),
    quiet,
  );
  t.is(fetched?.url, lookasideUrl(server.url('/good-mirror'), file));
});

test('with upstream fallback off, a cache miss is an error that names the fallback and upstream is not contacted', async (t) => {
  const body = content(100);
  const upstream = server.serve('/upstream/nofallback-1.0.tar.gz', body);
  const cacheDir = await tempDir();
  const error = await t.throwsAsync(
    fetchExternalFiles(
      [packageWith('p', [externalFile(upstream, body)])],
      config(cacheDir, { lookasideCaches: [server.url('/empty-mirror')], upstreamFallback: false }),
      quiet,
    ),
    { instanceOf: BrlError },
  );
  t.is(error?.code, 'FETCH_FAILED');
  t.regex(error?.message ?? '', /lookaside http:\/\/127\.0\.0\.1:\d+\/empty-mirror\/nofallback-1\.0\.tar\.gz\/[0-9a-f]{128}\/nofallback-1\.0\.tar\.gz: HTTP 404/);
  t.regex(error?.message ?? '', /upstream .*: not tried \(upstream fallback is off\)/);
  t.regex(error?.hint ?? '', /--upstream-fallback/);
  t.is(server.requestsFor('/upstream/nofallback-1.0.tar.gz').length, 0);
});

test('force-upstream fetches from upstream even with fallback off', async (t) => {
  const body = content(100);
  const upstream = server.serve('/upstream/forced-1.0.tar.gz', body);
  const [fetched] = await fetchExternalFiles(
    [packageWith('p', [externalFile(upstream, body, { forceUpstream: true })])],
    config(await tempDir(), { lookasideCaches: [server.url('/empty-mirror')], upstreamFallback: false }),
    quiet,
  );
  t.is(fetched?.source, 'upstream');
  t.is(fetched?.url, upstream);
});

test('with upstream fallback on, a cache miss falls through to upstream', async (t) => {
  const body = content(100);
  const upstream = server.serve('/upstream/fallback-1.0.tar.gz', body);
  const [fetched] = await fetchExternalFiles(
    [packageWith('p', [externalFile(upstream, body)])],
    config(await tempDir(), { lookasideCaches: [server.url('/empty-mirror')], upstreamFallback: true }),
    quiet,
  );
  t.is(fetched?.source, 'upstream');
});

test('no lookaside cache and no fallback is an error saying how to allow a source', async (t) => {
  const body = content(100);
  const error = await t.throwsAsync(
    fetchExternalFiles(
      [packageWith('p', [externalFile(server.url('/upstream/none.tar.gz'), body)])],
      config(await tempDir(), { lookasideCaches: [], upstreamFallback: false }),
      quiet,
    ),
    { instanceOf: BrlError },
  );
  t.is(error?.code, 'NO_SOURCE');
  t.regex(error?.hint ?? '', /lookaside-caches.*upstream-fallback/s);
});

test('file:// sources are copied and verified', async (t) => {
  const dir = await tempDir();
  const body = content(3000);
  await writeFile(join(dir, 'local-1.0.tar.gz'), body);
  const file = externalFile(pathToFileURL(join(dir, 'local-1.0.tar.gz')).href, body);
  const cacheDir = await tempDir();
  const [fetched] = await fetchExternalFiles([packageWith('p', [file])], config(cacheDir), quiet);
  t.is(fetched?.source, 'upstream');
  t.deepEqual(await readFile(lookasidePath(cacheDir, file)), body);

  const missing = externalFile(pathToFileURL(join(dir, 'gone.tar.gz')).href, body);
  const error = await t.throwsAsync(fetchExternalFiles([packageWith('p', [missing])], config(cacheDir), quiet), { instanceOf: BrlError });
  t.regex(error?.message ?? '', /gone\.tar\.gz does not exist/);
});

test('one project\'s local cache directory serves as a file:// lookaside cache for another', async (t) => {
  const body = content(2000);
  const upstream = server.serve('/upstream/shared-mirror-1.0.tar.gz', body);
  const file = externalFile(upstream, body);
  const firstCache = await tempDir();
  await fetchExternalFiles([packageWith('p', [file])], config(firstCache), quiet);
  const secondCache = await tempDir();
  const [fetched] = await fetchExternalFiles(
    [packageWith('p', [file])],
    config(secondCache, { lookasideCaches: [pathToFileURL(firstCache).href], upstreamFallback: false }),
    quiet,
  );
  t.is(fetched?.source, 'lookaside');
  t.deepEqual(await readFile(lookasidePath(secondCache, file)), body);
  t.is(server.requestsFor('/upstream/shared-mirror-1.0.tar.gz').length, 1);
});

test('several failing files are reported together, a mismatch first', async (t) => {
  const good = content(100);
  const wrongUrl = server.serve('/upstream/multi-wrong.tar.gz', content(100));
  const missing = externalFile(server.url('/upstream/multi-missing.tar.gz'), good);
  const wrong = externalFile(wrongUrl, good);
  const cacheDir = await tempDir();
  const error = await t.throwsAsync(
    fetchExternalFiles([packageWith('a', [missing]), packageWith('b', [wrong])], config(cacheDir), quiet),
    { instanceOf: BrlError },
  );
  t.is(error?.code, 'SHA512_MISMATCH');
  t.regex(error?.message ?? '', /could not fetch 2 external files:\n- sha512 mismatch for multi-wrong\.tar\.gz \(package b\).*\n[\s\S]*- could not fetch multi-missing\.tar\.gz \(package a\)/);
  t.deepEqual(await filesUnder(cacheDir), []);
});

test.serial('npm: sources resolve through the configured npm registry and are verified', async (t) => {
  const tarball = content(5000);
  const tarballUrl = server.serve('/npm/brl-demo/-/brl-demo-1.2.3.tgz', tarball);
  const integrity = `sha512-${Buffer.from(sha512(tarball), 'hex').toString('base64')}`;
  server.serve(
    '/npm/brl-demo',
    JSON.stringify({
      name: 'brl-demo',
      'dist-tags': { latest: '1.2.3' },
      versions: { '1.2.3': { name: 'brl-demo', version: '1.2.3', dist: { tarball: tarballUrl, integrity } } },
    }),
    { contentType: 'application/json' },
  );
  const restore = setEnv({ npm_config_registry: server.url('/npm/'), npm_config_cache: await tempDir('brl-npm-cache-') });
  try {
    const file = externalFile('npm:brl-demo@1.2.3', tarball, { fileName: 'brl-demo-1.2.3.tgz' });
    const cacheDir = await tempDir();
    const [fetched] = await fetchExternalFiles([packageWith('node-runtime', [file])], config(cacheDir), quiet);
    t.is(fetched?.url, tarballUrl);
    t.deepEqual(await readFile(lookasidePath(cacheDir, file)), tarball);

    // The registry's own integrity disagreeing with the pin is refused before any download.
    const before = server.requestsFor('/npm/brl-demo/-/brl-demo-1.2.3.tgz').length;
    const wrongPin = externalFile('npm:brl-demo@1.2.3', content(10), { fileName: 'brl-demo-1.2.3.tgz' });
    const error = await t.throwsAsync(fetchExternalFiles([packageWith('node-runtime', [wrongPin])], config(cacheDir), quiet), {
      instanceOf: BrlError,
    });
    t.is(error?.code, 'SHA512_MISMATCH');
    t.true(error?.message.includes(`got ${sha512(tarball)}`));
    t.is(server.requestsFor('/npm/brl-demo/-/brl-demo-1.2.3.tgz').length, before);

    const unknownVersion = externalFile('npm:brl-demo@9.9.9', tarball, { fileName: 'brl-demo-9.9.9.tgz' });
    const notFound = await t.throwsAsync(fetchExternalFiles([packageWith('node-runtime', [unknownVersion])], config(cacheDir), quiet), {
      instanceOf: BrlError,
    });
    t.is(notFound?.code, 'NPM_VERSION_UNKNOWN');
    t.regex(notFound?.message ?? '', /npm:brl-demo@9\.9\.9: not on the configured npm registry/);
    t.regex(notFound?.hint ?? '', /latest brl-demo is 1\.2\.3.*\n  url = "npm:brl-demo@1\.2\.3"/);

    const unknownPackage = externalFile('npm:brl-nonexistent@1.0.0', tarball, { fileName: 'x.tgz' });
    const unknown = await t.throwsAsync(fetchExternalFiles([packageWith('node-runtime', [unknownPackage])], config(cacheDir), quiet), {
      instanceOf: BrlError,
    });
    t.is(unknown?.code, 'NPM_PACKAGE_UNKNOWN');
  } finally {
    restore();
  }
});

test.serial('deb: sources resolve through the configured apt sources; a version no longer served says how to move the pin', async (t) => {
  const apt = await localAptRepository(server);
  const restore = setEnv({ APT_CONFIG: apt.configPath });
  try {
    const file = externalFile('deb:brl-demo=1.0-1', apt.deb, { fileName: 'brl-demo_1.0-1_all.deb' });
    const cacheDir = await tempDir();
    const [fetched] = await fetchExternalFiles([packageWith('kernel', [file])], config(cacheDir), quiet);
    t.is(fetched?.url, server.url('/debian/./brl-demo_1.0-1_all.deb'));
    t.is(server.requestsFor('/debian/brl-demo_1.0-1_all.deb').length, 1);
    const { stdout } = await run('dpkg-deb', ['--field', lookasidePath(cacheDir, file), 'Package', 'Version']);
    t.is(stdout, 'Package: brl-demo\nVersion: 1.0-1\n');

    const stale = externalFile('deb:brl-demo=0.9-1', apt.deb, { fileName: 'brl-demo_0.9-1_all.deb' });
    const error = await t.throwsAsync(fetchExternalFiles([packageWith('kernel', [stale])], config(cacheDir), quiet), { instanceOf: BrlError });
    t.is(error?.code, 'DEB_VERSION_GONE');
    t.regex(error?.message ?? '', /version 0\.9-1 of brl-demo is no longer served by the configured apt sources/);
    t.regex(error?.hint ?? '', /url = "deb:brl-demo=1\.0-1"\n  path = "brl-demo_1\.0-1_all\.deb"/);
    t.regex(error?.hint ?? '', /Candidate: 1\.0-1/);

    const unknown = externalFile('deb:brl-nonexistent=1.0', apt.deb, { fileName: 'x.deb' });
    const unknownError = await t.throwsAsync(fetchExternalFiles([packageWith('kernel', [unknown])], config(cacheDir), quiet), {
      instanceOf: BrlError,
    });
    t.is(unknownError?.code, 'DEB_PACKAGE_UNKNOWN');
  } finally {
    restore();
  }
});

function setEnv(values: Record<string, string>): () => void {
  const saved = Object.fromEntries(Object.keys(values).map((key) => [key, process.env[key]]));
  Object.assign(process.env, values);
  return () => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}

/** A one-package apt repository served by `server` at /debian, and an APT_CONFIG that uses only it. */
async function localAptRepository(server: FaultServer): Promise<{ configPath: string; deb: Buffer }> {
  const dir = await tempDir('brl-apt-');
  const root = join(dir, 'root');
  await mkdir(join(root, 'DEBIAN'), { recursive: true });
  const control = 'Package: brl-demo\nVersion: 1.0-1\nArchitecture: all\nMaintainer: brl <brl@example.com>\nDescription: demo\n';
  await writeFile(join(root, 'DEBIAN', 'control'), control);
  const debPath = join(dir, 'brl-demo_1.0-1_all.deb');
  await run('dpkg-deb', ['--build', '--root-owner-group', root, debPath]);
  const deb = await readFile(debPath);
  const { createHash } = await import('node:crypto');
  const packages = `${control.replace('Description', `Filename: ./brl-demo_1.0-1_all.deb\nSize: ${deb.length}\nSHA256: ${createHash('sha256').update(deb).digest('hex')}\nDescription`)}\n`;
  server.serve('/debian/./Packages', packages);
  // apt asks for `./` paths as written; undici normalizes the URL apt prints.
  server.serve('/debian/brl-demo_1.0-1_all.deb', deb);
  for (const sub of ['lists/partial', 'cache/archives/partial', 'parts']) await mkdir(join(dir, sub), { recursive: true });
  await writeFile(join(dir, 'status'), '');
  await writeFile(join(dir, 'sources.list'), `deb [trusted=yes] ${server.url('/debian')} ./\n`);
  const configPath = join(dir, 'apt.conf');
  await writeFile(
    configPath,
    [
      `Dir::State::Lists "${dir}/lists";`,
      `Dir::State::status "${dir}/status";`,
      `Dir::Cache "${dir}/cache";`,
      `Dir::Etc::SourceList "${dir}/sources.list";`,
      `Dir::Etc::SourceParts "${dir}/parts";`,
      'APT::Sandbox::User "root";',
      '',
    ].join('\n'),
  );
  await run('apt-get', ['update', '-q'], { env: { ...process.env, APT_CONFIG: configPath } });
  return { configPath, deb };
}

test('a lookaside cache directory that cannot be written is an error naming it', async (t) => {
  const body = content(100);
  const upstream = server.serve('/upstream/readonly-1.0.tar.gz', body);
  const parent = await tempDir();
  // A file where the cache directory should be: creating the cache fails the same way for root and users.
  await writeFile(join(parent, 'cache'), '');
  const error = await t.throwsAsync(
    fetchExternalFiles([packageWith('p', [externalFile(upstream, body)])], config(join(parent, 'cache')), quiet),
    { instanceOf: BrlError },
  );
  t.is(error?.code, 'CACHE_NOT_WRITABLE');
  t.regex(error?.message ?? '', /cannot write readonly-1\.0\.tar\.gz into the lookaside cache: (ENOTDIR|EEXIST) on .*\/cache/);
  t.regex(error?.hint ?? '', /--cache-dir/);
});

test('a file Bottlerocket\'s buildsys left in the package directory seeds the cache when its sha512 matches', async (t) => {
  const body = content(500);
  const packageDir = await tempDir('brl-pkgdir-');
  const file = externalFile(server.url('/upstream/seed-1.0.tar.gz'), body);
  await writeFile(join(packageDir, 'seed-1.0.tar.gz'), body);
  const definition = { ...packageWith('p', [file]), dir: packageDir };
  const cacheDir = await tempDir();
  const [fetched] = await fetchExternalFiles([definition], config(cacheDir, { upstreamFallback: false }), quiet);
  t.is(fetched?.source, 'package-dir');
  t.deepEqual(await readFile(lookasidePath(cacheDir, file)), body);
  t.is(server.requestsFor('/upstream/seed-1.0.tar.gz').length, 0);

  // A stale copy is passed over (and left alone) for the next source.
  const newer = content(500);
  server.serve('/upstream/seed-1.0.tar.gz', newer);
  const newerFile = externalFile(server.url('/upstream/seed-1.0.tar.gz'), newer);
  const [refetched] = await fetchExternalFiles([{ ...packageWith('p', [newerFile]), dir: packageDir }], config(cacheDir), quiet);
  t.is(refetched?.source, 'upstream');
  t.deepEqual(await readFile(join(packageDir, 'seed-1.0.tar.gz')), body);
});
