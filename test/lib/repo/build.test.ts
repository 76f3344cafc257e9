import test from 'ava';
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import tar from 'tar-stream';
import { buildRepository } from '../../../src/lib/repo/build.ts';
import { findBuildImages } from '../../../src/lib/repo/build-images.ts';
import { defaultExpirationPolicy, resolveWavePolicy } from '../../../src/lib/repo/policy.ts';
import { serveDirectory } from '../../../src/lib/repo/serve.ts';
import { parseTargets } from '../../../src/lib/tuf/targets.ts';
import { parseTimestamp } from '../../../src/lib/tuf/snapshot.ts';
import { parseExpires } from '../../../src/lib/tuf/time.ts';
import { parseManifest } from '../../../src/lib/update-metadata/index.ts';
import { buildSignedRepo, makeImages, tempDir, type BuiltRepo } from './helpers.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function targetsOf(built: BuiltRepo) {
  return parseTargets(readFileSync(join(built.result.metadataDir, `${built.result.versions.targets}.targets.json`)), 'targets.json').signed;
}

function manifestOf(built: BuiltRepo) {
  const entry = targetsOf(built).targets['manifest.json']!;
  return parseManifest(readFileSync(join(built.result.targetsDir, `${entry.hashes.sha256}.manifest.json`), 'utf8'));
}

test('targets are stored once as <sha256>.<name> and metadata under <variant>/<arch>/', async (t) => {
  const built = await buildSignedRepo();
  const boot = readFileSync(built.images.boot);
  t.true(existsSync(join(built.outdir, 'targets', `${sha256(boot)}.bottlerocket-dev-x86_64-1.0.0-abcdef12-boot.ext4.lz4`)));
  t.is(built.result.metadataDir, join(built.outdir, 'dev', 'x86_64'));
  const { targets, snapshot, timestamp } = built.result.versions;
  t.deepEqual(readdirSync(built.result.metadataDir).sort(), ['1.root.json', `${snapshot}.snapshot.json`, `${targets}.targets.json`, 'timestamp.json'].sort());
  t.true(Math.abs(timestamp - Date.now() / 1000) < 60, 'versions are unix seconds');
  const entry = targetsOf(built).targets['bottlerocket-dev-x86_64-1.0.0-abcdef12-boot.ext4.lz4'];
  t.deepEqual(entry, { length: boot.length, hashes: { sha256: sha256(boot) } });
});

test('expirations follow the 2w/2w/1w policy from the release start', async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const built = await buildSignedRepo({ now });
  const week = 7 * 86_400;
  t.is(parseExpires(built.result.expires.targets), now + 2 * week);
  t.is(parseExpires(built.result.expires.snapshot), now + 2 * week);
  t.is(parseExpires(built.result.expires.timestamp), now + week);
  t.regex(built.result.expires.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
});

test('the manifest gets the update with waves from the policy, counted from the release start', async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const built = await buildSignedRepo({ now });
  const manifest = manifestOf(built);
  t.is(manifest.updates.length, 1);
  const update = manifest.updates[0]!;
  t.deepEqual(update.images, {
    boot: 'bottlerocket-dev-x86_64-1.0.0-abcdef12-boot.ext4.lz4',
    root: 'bottlerocket-dev-x86_64-1.0.0-abcdef12-root.ext4.lz4',
    hash: 'bottlerocket-dev-x86_64-1.0.0-abcdef12-root.verity.lz4',
  });
  t.is(update.max_version, '1.0.0');
  t.deepEqual(Object.keys(update.waves), ['0', '20', '102', '307', '819', '1228', '1843']);
  t.is(Date.parse(update.waves['0']!) / 1000, now + 3600);
  t.is(Date.parse(update.waves['1843']!) / 1000, now + 6 * 86_400);
});

test('a second build extends the repository: both updates, max_version carried to all, versions increase', async (t) => {
  const dir = tempDir();
  const now = Math.floor(Date.now() / 1000);
  const first = await buildSignedRepo({ dir, now });
  const second = await buildSignedRepo({ dir, signer: first.signer, rootPath: first.rootPath, version: '1.1.0', now });
  t.is(second.result.versions.timestamp, first.result.versions.timestamp + 1, 'two builds in one second still increase');
  t.is(second.result.extendedFrom, first.result.metadataDir);
  const manifest = manifestOf(second);
  t.deepEqual(manifest.updates.map((update) => [update.version, update.max_version]), [['1.0.0', '1.1.0'], ['1.1.0', '1.1.0']]);
  const names = Object.keys(targetsOf(second).targets);
  t.true(names.includes('bottlerocket-dev-x86_64-1.0.0-abcdef12-boot.ext4.lz4'));
  t.true(names.includes('bottlerocket-dev-x86_64-1.1.0-abcdef12-boot.ext4.lz4'));
  // The previous metadata stays for clients in the middle of an update (consistent snapshots).
  t.true(existsSync(join(second.result.metadataDir, `${first.result.versions.targets}.targets.json`)));
});

test('building the same images again is a re-release: one update, waves from the new start, higher metadata versions', async (t) => {
  const dir = tempDir();
  const now = Math.floor(Date.now() / 1000);
  const first = await buildSignedRepo({ dir, now });
  const later = now + 86_400;
  const second = await buildSignedRepo({ dir, signer: first.signer, rootPath: first.rootPath, now: later });
  const manifest = manifestOf(second);
  t.is(manifest.updates.length, 1);
  t.is(Date.parse(manifest.updates[0]!.waves['0']!) / 1000, later + 3600, 'the first wave counts from the second release start');
  t.true(second.result.versions.timestamp > first.result.versions.timestamp);
  t.true(second.result.versions.targets > first.result.versions.targets);
});

test('the same version with other images is refused: under other names as an existing update, under the same names as changed targets', async (t) => {
  const dir = tempDir();
  const first = await buildSignedRepo({ dir });
  const common = {
    variant: 'dev', arch: 'x86_64', repo: { name: 'default' }, outdir: first.outdir, rootPath: first.rootPath, migrations: {},
    wavePolicy: await resolveWavePolicy('default'), expirationPolicy: defaultExpirationPolicy, now: Math.floor(Date.now() / 1000), releaseStart: Math.floor(Date.now() / 1000), signers: [first.signer],
  };
  const otherBuild = await findBuildImages(makeImages(join(dir, 'other'), '1.0.0', 'dev', 'x86_64', 'fedcba98'), 'dev', 'x86_64');
  const exists = await t.throwsAsync(buildRepository({ ...common, images: otherBuild }));
  t.regex(exists!.message, /already has an update for variant dev, arch x86_64, version 1\.0\.0/);
  const changedDir = makeImages(join(dir, 'changed'));
  writeFileSync(join(changedDir, 'bottlerocket-dev-x86_64-1.0.0-abcdef12-root.ext4.lz4'), 'other bytes');
  const changed = await t.throwsAsync(buildRepository({ ...common, images: await findBuildImages(changedDir, 'dev', 'x86_64') }));
  t.is((changed as { code?: string }).code, 'TARGET_CONFLICT');
});

test('a different file under an existing target name is refused', async (t) => {
  const dir = tempDir();
  const first = await buildSignedRepo({ dir });
  const extraDir = join(dir, 'extra');
  mkdirSync(extraDir);
  writeFileSync(join(extraDir, 'notes.txt'), 'first');
  const images = await findBuildImages(makeImages(dir, '1.1.0'), 'dev', 'x86_64');
  const common = {
    variant: 'dev', arch: 'x86_64', repo: { name: 'default' }, outdir: first.outdir, rootPath: first.rootPath,
    wavePolicy: await resolveWavePolicy('default'), expirationPolicy: defaultExpirationPolicy, now: Math.floor(Date.now() / 1000), releaseStart: Math.floor(Date.now() / 1000), signers: [first.signer],
  };
  await buildRepository({ ...common, images, extraCopyTargets: [join(extraDir, 'notes.txt')] });
  writeFileSync(join(extraDir, 'notes.txt'), 'second');
  const next = await findBuildImages(makeImages(dir, '1.2.0'), 'dev', 'x86_64');
  const error = await t.throwsAsync(buildRepository({ ...common, images: next, extraCopyTargets: [join(extraDir, 'notes.txt')] }));
  t.regex(error!.message, /target notes\.txt already exists with sha256 \w+; .*notes\.txt has \w+/);
  t.is((error as { code?: string }).code, 'TARGET_CONFLICT');
});

test('migrations in <prefix>-migrations.tar become targets and Release.toml migrations go into the manifest', async (t) => {
  const dir = tempDir();
  const imagesDir = makeImages(dir, '1.1.0');
  const pack = tar.pack();
  pack.entry({ name: 'migrate_v1.1.0_example.lz4' }, 'migration bytes');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  writeFileSync(join(imagesDir, 'bottlerocket-dev-x86_64-1.1.0-abcdef12-migrations.tar'), Buffer.concat(chunks));
  const base = await buildSignedRepo({ dir });
  const images = await findBuildImages(imagesDir, 'dev', 'x86_64');
  const result = await buildRepository({
    variant: 'dev', arch: 'x86_64', repo: { name: 'default' }, outdir: base.outdir, rootPath: base.rootPath, images,
    migrations: { '(1.0.0, 1.1.0)': ['migrate_v1.1.0_example.lz4'] },
    wavePolicy: await resolveWavePolicy('ohno'), expirationPolicy: defaultExpirationPolicy, now: Math.floor(Date.now() / 1000), releaseStart: Math.floor(Date.now() / 1000), signers: [base.signer],
  });
  const migration = result.targets.find((target) => target.name === 'migrate_v1.1.0_example.lz4');
  t.is(migration?.sha256, sha256(Buffer.from('migration bytes')));
  const built = { ...base, result };
  t.deepEqual(manifestOf(built).migrations, { '(1.0.0, 1.1.0)': ['migrate_v1.1.0_example.lz4'] });
});

test('a build extends the published repository at metadata_base_url when the output directory is empty', async (t) => {
  const dir = tempDir();
  const published = await buildSignedRepo({ dir });
  const server = await serveDirectory(published.outdir);
  t.teardown(() => server.close());
  const images = await findBuildImages(makeImages(dir, '1.1.0'), 'dev', 'x86_64');
  const outdir = join(dir, 'next');
  const now = Math.floor(Date.now() / 1000);
  const result = await buildRepository({
    variant: 'dev', arch: 'x86_64', outdir, rootPath: published.rootPath, images,
    repo: { name: 'default', metadataBaseUrl: server.url, targetsUrl: `${server.url}targets/` },
    wavePolicy: await resolveWavePolicy('default'), expirationPolicy: defaultExpirationPolicy, now, releaseStart: now, signers: [published.signer],
  });
  t.is(result.extendedFrom, `${server.url}dev/x86_64/`);
  const timestamp = parseTimestamp(readFileSync(join(result.metadataDir, 'timestamp.json')), 'timestamp.json');
  t.true(timestamp.signed.version > published.result.versions.timestamp);
  const manifest = manifestOf({ ...published, outdir, result });
  t.deepEqual(manifest.updates.map((update) => update.version), ['1.0.0', '1.1.0']);
  // Only the new build's files are written locally; the old ones stay where they are published.
  t.false(readdirSync(join(outdir, 'targets')).some((name) => name.includes('1.0.0')));
});

test('images are found by the real (non-link) boot image of the requested version', async (t) => {
  const dir = tempDir();
  const imagesDir = makeImages(dir, '2.0.0', 'dev', 'x86_64', 'deadbeef-dirty');
  const found = await findBuildImages(imagesDir, 'dev', 'x86_64');
  t.is(found.version, '2.0.0');
  t.is(found.prefix, 'bottlerocket-dev-x86_64-2.0.0-deadbeef-dirty');
  t.deepEqual(found.linkTargets.map((path) => path.slice(imagesDir.length + 1)), ['bottlerocket-dev-x86_64-2.0.0-deadbeef-dirty.img.lz4']);
  await t.throwsAsync(findBuildImages(imagesDir, 'dev', 'x86_64', '3.0.0'), { message: /has no <name>-dev-x86_64-3\.0\.0-<build>-boot\.ext4\.lz4/ });
  await t.throwsAsync(findBuildImages(join(dir, 'nothing'), 'dev', 'x86_64'), { message: /no variant images/ });
});

test('a target reached through a relative symlink is stored as the file it points at', async (t) => {
  const dir = tempDir();
  const imagesDir = makeImages(dir, '1.0.0');
  const { symlinkSync } = await import('node:fs');
  symlinkSync('bottlerocket-dev-x86_64-1.0.0-abcdef12.img.lz4', join(imagesDir, 'bottlerocket-dev-x86_64-v1.0.0.img.lz4'));
  const built = await buildSignedRepo({ dir });
  const stored = built.result.targets.find((target) => target.name === 'bottlerocket-dev-x86_64-v1.0.0.img.lz4');
  t.truthy(stored);
  const path = join(built.result.targetsDir, `${stored!.sha256}.${stored!.name}`);
  t.deepEqual(readFileSync(path), readFileSync(join(imagesDir, 'bottlerocket-dev-x86_64-1.0.0-abcdef12.img.lz4')));
});
