import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { brl } from '../helpers/cli.ts';

/** A project with packages `hello` (one file:// source) and `kernel` (none). */
async function project(): Promise<{ dir: string; sourceSha512: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'brl-fetch-cli-'));
  const source = join(dir, 'upstream', 'hello-1.0.tar.gz');
  await mkdir(join(dir, 'upstream'));
  await writeFile(source, 'hello sources\n');
  const sourceSha512 = createHash('sha512').update('hello sources\n').digest('hex');
  for (const name of ['hello', 'kernel']) {
    await mkdir(join(dir, 'packages-specs', name), { recursive: true });
    await writeFile(join(dir, 'packages-specs', name, `${name}.spec`), `Name: ${name}\n`);
  }
  await writeFile(
    join(dir, 'packages-specs', 'hello', 'package.toml'),
    `[[external-files]]\nurl = "${pathToFileURL(source).href}"\nsha512 = "${sourceSha512}"\n`,
  );
  await writeFile(join(dir, 'brl.toml'), '[fetch]\nlookaside-caches = []\n');
  return { dir, sourceSha512 };
}

/** oclif wraps error text at the terminal width behind ` › `; undo that to match whole sentences. */
function flat(text: string): string {
  return text.replace(/\s*\n\s*›\s*/g, ' ').replace(/\s+/g, ' ');
}

const env = { BRL_PROJECT_DIR: '', BRL_LOOKASIDE_CACHE: '', BUILDSYS_UPSTREAM_SOURCE_FALLBACK: '' };

test('brl fetch fetches into the lookaside cache, then reports the file as cached', async (t) => {
  const { dir, sourceSha512 } = await project();
  const first = await brl(['fetch', '--upstream-fallback', '--json'], { cwd: dir, env });
  t.is(first.exitCode, 0, first.stderr);
  const result = JSON.parse(first.stdout) as { cacheDir: string; files: { packageName: string; path: string; source: string }[] };
  t.is(result.cacheDir, join(dir, '.lookaside'));
  t.deepEqual(
    result.files.map((file) => [file.packageName, file.path, file.source]),
    [['hello', join(dir, '.lookaside', 'hello-1.0.tar.gz', sourceSha512, 'hello-1.0.tar.gz'), 'upstream']],
  );
  t.is(await readFile(result.files[0]!.path, 'utf8'), 'hello sources\n');

  const second = await brl(['fetch', 'hello'], { cwd: dir, env });
  t.is(second.exitCode, 0, second.stderr);
  t.regex(second.stdout, /1 external file\(s\) of 1 package\(s\) in .*: 1 already cached, 0 from lookaside caches, 0 from upstream/);
});

test('brl fetch without a source allowed exits 7 with a hint, not a stack trace', async (t) => {
  const { dir } = await project();
  const { exitCode, stderr } = await brl(['fetch'], { cwd: dir, env });
  t.is(exitCode, 7);
  t.regex(flat(stderr), /hello-1\.0\.tar\.gz \(package hello\): not in the local cache, no lookaside cache is configured and upstream fallback is off/);
  t.regex(flat(stderr), /Try this: .*--upstream-fallback/);
  t.notRegex(stderr, /at .*\.js:\d+/);
});

test('brl fetch of an unknown package lists the known ones', async (t) => {
  const { dir } = await project();
  const { exitCode, stderr } = await brl(['fetch', 'nosuch'], { cwd: dir, env });
  t.is(exitCode, 4);
  t.regex(flat(stderr), /unknown package "nosuch"/);
  t.regex(flat(stderr), /known packages: hello, kernel/);
});

test('brl fetch prints one plain line per file when not on a terminal', async (t) => {
  const { dir } = await project();
  const { exitCode, stderr, stdout } = await brl(['fetch', '--upstream-fallback'], { cwd: dir, env });
  t.is(exitCode, 0, stderr);
  t.regex(stdout + stderr, /hello: hello-1\.0\.tar\.gz \(upstream file:\/\//);
});

test('--lookaside-cache is repeatable, keeps its order and leaves package names as arguments', async (t) => {
  const { dir, sourceSha512 } = await project();
  const emptyMirror = await mkdtemp(join(tmpdir(), 'brl-mirror-empty-'));
  const mirror = await mkdtemp(join(tmpdir(), 'brl-mirror-'));
  await mkdir(join(mirror, 'hello-1.0.tar.gz', sourceSha512), { recursive: true });
  await writeFile(join(mirror, 'hello-1.0.tar.gz', sourceSha512, 'hello-1.0.tar.gz'), 'hello sources\n');
  const caches = [pathToFileURL(emptyMirror).href, pathToFileURL(mirror).href];
  const { exitCode, stdout, stderr } = await brl(
    ['fetch', '--lookaside-cache', caches[0]!, '--lookaside-cache', caches[1]!, 'hello', '--no-upstream-fallback', '--json'],
    { cwd: dir, env },
  );
  t.is(exitCode, 0, stderr);
  const result = JSON.parse(stdout) as { lookasideCaches: string[]; upstreamFallback: boolean; files: { packageName: string; source: string; url: string }[] };
  t.deepEqual(result.lookasideCaches, caches);
  t.false(result.upstreamFallback);
  t.deepEqual(
    result.files.map((file) => [file.packageName, file.source, file.url]),
    [['hello', 'lookaside', `${caches[1]}/hello-1.0.tar.gz/${sourceSha512}/hello-1.0.tar.gz`]],
  );
});
