import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { defaultLookasideCaches, loadFetchConfig } from '../../../src/lib/fetch/index.ts';
import { tempDir } from './_fixtures.ts';

async function projectWith(toml: string | undefined): Promise<string> {
  const dir = await tempDir('brl-fetch-config-');
  if (toml !== undefined) await writeFile(join(dir, 'brl.toml'), toml);
  return dir;
}

test('without brl.toml the defaults are the public Bottlerocket cache, no fallback, .lookaside and 8 jobs', async (t) => {
  const dir = await projectWith(undefined);
  t.deepEqual(await loadFetchConfig(dir, { env: {} }), {
    cacheDir: join(dir, '.lookaside'),
    lookasideCaches: [...defaultLookasideCaches],
    upstreamFallback: false,
    jobs: 8,
  });
});

test('reads every [fetch] key from brl.toml and ignores sections it does not own', async (t) => {
  const dir = await projectWith(`
[build]
anything = "owned by another part of brl"

[fetch]
lookaside-caches = ["https://mirror.example.com/lookaside", "file:///srv/lookaside"]
upstream-fallback = true
cache-dir = "/var/cache/brl"
jobs = 3
`);
  t.deepEqual(await loadFetchConfig(dir, { env: {} }), {
    cacheDir: '/var/cache/brl',
    lookasideCaches: ['https://mirror.example.com/lookaside', 'file:///srv/lookaside'],
    upstreamFallback: true,
    jobs: 3,
  });
});

test('a relative cache-dir is relative to the project and an empty cache list is allowed', async (t) => {
  const dir = await projectWith('[fetch]\ncache-dir = "cache/sources"\nlookaside-caches = []\n');
  const config = await loadFetchConfig(dir, { env: {} });
  t.is(config.cacheDir, join(dir, 'cache/sources'));
  t.deepEqual(config.lookasideCaches, []);
});

test('an unknown [fetch] key is an error naming the file, line and key', async (t) => {
  const dir = await projectWith('[fetch]\njobs = 2\nlookaside-cache = ["https://x"]\n');
  const error = await t.throwsAsync(loadFetchConfig(dir, { env: {} }), { instanceOf: BrlError });
  t.is(error?.message.startsWith(`${join(dir, 'brl.toml')}:3: fetch.lookaside-cache: unknown key`), true, error?.message);
  t.is(error?.exitCode, 3);
});

test('wrongly typed values are errors naming the key', async (t) => {
  for (const [toml, pattern] of [
    ['[fetch]\njobs = "four"\n', /:2: fetch\.jobs: must be an integer/],
    ['[fetch]\njobs = 0\n', /:2: fetch\.jobs: must be from 1 to 64/],
    ['[fetch]\nupstream-fallback = "yes"\n', /:2: fetch\.upstream-fallback: must be true or false/],
    ['[fetch]\nlookaside-caches = "https://x"\n', /:2: fetch\.lookaside-caches: must be an array of strings/],
    ['[fetch]\nlookaside-caches = ["ftp://x"]\n', /:2: fetch\.lookaside-caches: "ftp:\/\/x" is not an http/],
    ['fetch = 1\n', /:1: fetch: must be a table/],
    ['[fetch\n', /brl\.toml:1:\d+: /],
  ] as const) {
    const dir = await projectWith(toml);
    const error = await t.throwsAsync(loadFetchConfig(dir, { env: {} }), { instanceOf: BrlError });
    t.regex(error?.message ?? '', pattern);
  }
});

test('the environment overrides brl.toml and flags override the environment', async (t) => {
  const dir = await projectWith('[fetch]\nlookaside-caches = ["https://file.example"]\nupstream-fallback = true\n');
  const env = { BRL_LOOKASIDE_CACHE: 'https://env-1.example, https://env-2.example', BUILDSYS_UPSTREAM_SOURCE_FALLBACK: 'false' };
  const fromEnv = await loadFetchConfig(dir, { env });
  t.deepEqual(fromEnv.lookasideCaches, ['https://env-1.example', 'https://env-2.example']);
  t.false(fromEnv.upstreamFallback);
  const fromFlags = await loadFetchConfig(dir, { env, lookasideCaches: ['https://flag.example'], upstreamFallback: true, jobs: 2 });
  t.deepEqual(fromFlags.lookasideCaches, ['https://flag.example']);
  t.true(fromFlags.upstreamFallback);
  t.is(fromFlags.jobs, 2);
});

test('BUILDSYS_LOOKASIDE_CACHE is honoured when BRL_LOOKASIDE_CACHE is unset', async (t) => {
  const dir = await projectWith(undefined);
  const config = await loadFetchConfig(dir, { env: { BUILDSYS_LOOKASIDE_CACHE: 'https://buildsys.example' } });
  t.deepEqual(config.lookasideCaches, ['https://buildsys.example']);
});

test('bad environment values and flags are usage errors', async (t) => {
  const dir = await projectWith(undefined);
  const fallback = await t.throwsAsync(loadFetchConfig(dir, { env: { BUILDSYS_UPSTREAM_SOURCE_FALLBACK: 'yes' } }), { instanceOf: BrlError });
  t.regex(fallback?.message ?? '', /BUILDSYS_UPSTREAM_SOURCE_FALLBACK must be "true" or "false", got "yes"/);
  const cache = await t.throwsAsync(loadFetchConfig(dir, { env: { BRL_LOOKASIDE_CACHE: 'cache.example' } }), { instanceOf: BrlError });
  t.regex(cache?.message ?? '', /BRL_LOOKASIDE_CACHE: "cache\.example" is not an http/);
  t.is(cache?.exitCode, 2);
  const jobs = await t.throwsAsync(loadFetchConfig(dir, { env: {}, jobs: 0 }), { instanceOf: BrlError });
  t.regex(jobs?.message ?? '', /jobs must be an integer from 1 to 64, got 0/);
});
