import test from 'ava';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashFile } from '../../../src/lib/core/hash.ts';
import { parseLock, renderLock } from '../../../src/lib/debian/lock-file.ts';
import { lockPackages } from '../../../src/lib/debian/lock.ts';
import type { FetchConfig } from '../../../src/lib/fetch/config.ts';
import { lookasidePath } from '../../../src/lib/fetch/lookaside.ts';
import { loadPackage } from '../../../src/lib/packages/manifest.ts';

const projectDirs: string[] = [];
test.after.always(async () => {
  for (const dir of projectDirs) await rm(dir, { recursive: true, force: true });
});

/** A project with one package that repackages a small Debian library and its closure. */
async function project(roots: string, debianKeys = '', topLevel = ''): Promise<{ dir: string; fetch: FetchConfig; manifest: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'brl-debs-'));
  const pkgDir = join(dir, 'packages-specs/probe');
  await mkdir(pkgDir, { recursive: true });
  await writeFile(join(pkgDir, 'probe.spec'), 'Name: probe\n');
  const manifest = join(pkgDir, 'package.toml');
  await writeFile(manifest, `${topLevel}[debian]\n${debianKeys}roots = ${roots}\n\n[debian.exclude]\nlibc6 = "the glibc package ships it"\n`);
  projectDirs.push(dir);
  return { dir, manifest, fetch: { cacheDir: join(dir, '.lookaside'), lookasideCaches: [], upstreamFallback: true, jobs: 2 } };
}

test('a lock pins the closure by sha512 from apt\'s indices, files the debs in the cache, and goes stale when the roots change', async (t) => {
  const { dir, fetch, manifest } = await project('["libacl1"]', 'architecture = "amd64"\n');
  await t.throwsAsync(loadPackage(dir, 'probe'), { message: /package probe: .*debs\.lock does not exist/ });

  const before = await lockPackages([await loadPackage(dir, 'probe', { allowStaleLock: true })], { check: true, fetch });
  t.false(before[0]?.current);

  const [written] = await lockPackages([await loadPackage(dir, 'probe', { allowStaleLock: true })], { fetch });
  t.false(written?.current);
  const lockPath = join(dir, 'packages-specs/probe/debs.lock');
  const lock = parseLock(lockPath, await readFile(lockPath, 'utf8'));
  const acl = lock.debs.find((deb) => deb.name === 'libacl1');
  t.truthy(acl);
  t.deepEqual(acl?.requiredBy, ['(root)']);
  t.deepEqual(lock.excluded.map((exclusion) => exclusion.name), ['libc6']);
  // Every locked deb is in the lookaside cache under its sha512, and hashes to it.
  for (const deb of lock.debs) {
    const fileName = new URL(deb.url).pathname.split('/').at(-1) as string;
    t.is((await hashFile(lookasidePath(fetch.cacheDir, { fileName, sha512: deb.sha512 }), 'sha512')).hex, deb.sha512);
  }
  // The text is exactly what rendering the parsed lock gives: nothing hand-formatted survives.
  t.is(renderLock(lock, 'brl debs lock probe'), await readFile(lockPath, 'utf8'));

  const definition = await loadPackage(dir, 'probe');
  t.true(definition.externalFiles.some((file) => file.url === `deb:libacl1:amd64=${acl?.version}` && file.sha512 === acl?.sha512));
  const [again] = await lockPackages([definition], { check: true, fetch });
  t.true(again?.current);
  t.deepEqual(again?.changes, []);

  await writeFile(manifest, (await readFile(manifest, 'utf8')).replace('["libacl1"]', '["libacl1", "libattr1"]'));
  await t.throwsAsync(loadPackage(dir, 'probe'), { message: /generated from other \[debian\] roots or excludes/ });
  const [stale] = await lockPackages([await loadPackage(dir, 'probe', { allowStaleLock: true })], { check: true, fetch });
  t.false(stale?.current);
});

test('a hand-edited lock is refused with the file and key', (t) => {
  const deb = ['[[deb]]', 'name = "a"', 'version = "1"', 'architecture = "amd64"', 'source = "a"', 'url = "http://x/a.deb"', 'size = 1', 'sha256 = "00"', `sha512 = "${'0'.repeat(128)}"`];
  const text = `${renderLock({ inputs: 'x', architecture: 'amd64', architectures: ['amd64'], debs: [], excluded: [] }, 'brl debs lock probe')}\n${deb.join('\n')}\nfor-architecture = "amd64"\n`;
  t.throws(() => parseLock('/p/debs.lock', text), { message: /\/p\/debs\.lock.*deb\[0\]\.sha256.*64 lowercase hex/ });
  const foreign = text.replace('for-architecture = "amd64"', 'for-architecture = "arm64"').replace('sha256 = "00"', `sha256 = "${'0'.repeat(64)}"`);
  t.throws(() => parseLock('/p/debs.lock', foreign), { message: /deb\[0\]\.for-architecture.*"arm64" is not one of architectures \(amd64\)/ });
});

test('a version 1 lock (one architecture) is still read, its debs in that architecture\'s closure', (t) => {
  const deb = ['[[deb]]', 'name = "a"', 'version = "1"', 'architecture = "amd64"', 'source = "a"', 'url = "http://x/a_1_amd64.deb"', 'size = 1', `sha256 = "${'0'.repeat(64)}"`, `sha512 = "${'0'.repeat(128)}"`];
  const lock = parseLock('/p/debs.lock', ['lock-version = 1', 'inputs = "x"', 'architecture = "amd64"', '', ...deb, ''].join('\n'));
  t.deepEqual(lock.architectures, ['amd64']);
  t.is(lock.debs[0]?.forArchitecture, 'amd64');
});

test('a package for x86_64 and aarch64 locks one closure per Debian architecture, each deb a source of its arch\'s build only', async (t) => {
  const { dir, fetch } = await project('["libacl1"]', '', 'arches = ["x86_64", "aarch64"]\n');
  const [written] = await lockPackages([await loadPackage(dir, 'probe', { allowStaleLock: true })], { fetch });
  t.false(written?.current);
  const lockPath = join(dir, 'packages-specs/probe/debs.lock');
  const lock = parseLock(lockPath, await readFile(lockPath, 'utf8'));
  t.deepEqual(lock.architectures, ['amd64', 'arm64']);
  for (const architecture of ['amd64', 'arm64']) {
    const acl = lock.debs.find((deb) => deb.name === 'libacl1' && deb.forArchitecture === architecture);
    t.is(acl?.architecture, architecture);
    t.true(acl?.url.endsWith(`_${architecture}.deb`));
    const fileName = new URL(acl?.url ?? 'x:').pathname.split('/').at(-1) as string;
    t.is((await hashFile(lookasidePath(fetch.cacheDir, { fileName, sha512: acl?.sha512 ?? '' }), 'sha512')).hex, acl?.sha512 ?? '');
  }
  t.deepEqual(lock.excluded.map((exclusion) => `${exclusion.name}:${exclusion.forArchitecture}`), ['libc6:amd64', 'libc6:arm64']);
  const definition = await loadPackage(dir, 'probe');
  const arm = definition.externalFiles.find((file) => file.url.startsWith('deb:libacl1:arm64='));
  t.deepEqual(arm?.arches, ['aarch64']);
  t.true(arm?.fileName.endsWith('_arm64.deb'));
  const [again] = await lockPackages([definition], { check: true, fetch });
  t.true(again?.current);
});
