import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { openMigrationCache, StagedMigrationCache } from '../../../src/lib/update-metadata/migration-cache.ts';
import { bundleAsHost } from '../../helpers/host-bundle.ts';
import { writeSignedMigrationCache } from './migration-cache-fixture.ts';

async function hostRoot(t: ExecutionContext): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'brl-migration-cache-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  return root;
}

const migration = Buffer.from('{"brl-migration":1}');

test('a cache is verified from the baked root through a root rotation and serves its targets', async (t) => {
  const cache = await writeSignedMigrationCache(await hostRoot(t), { 'migrate_v1.1.0_a.lz4': migration }, { rotateRoot: true });
  t.deepEqual((await readdir(cache.paths.metadataDir)).sort(), ['1.root.json', '2.root.json', '3.snapshot.json', '3.targets.json', 'timestamp.json']);
  const verified = await openMigrationCache(cache.paths);
  t.deepEqual(await verified!.readTarget('migrate_v1.1.0_a.lz4'), migration);
});

test('an expired timestamp does not block the offline check (the host may boot its staged update weeks later)', async (t) => {
  const cache = await writeSignedMigrationCache(await hostRoot(t), { 'manifest.json': Buffer.from('{}') }, { timestampExpiresIn: -86_400 * 30 });
  const verified = await openMigrationCache(cache.paths);
  t.deepEqual(await verified!.readTarget('manifest.json'), Buffer.from('{}'));
});

test('refuses a cached target whose bytes do not match the signed targets metadata', async (t) => {
  const cache = await writeSignedMigrationCache(await hostRoot(t), { 'migrate_v1.1.0_a.lz4': migration });
  await writeFile(cache.targetFiles['migrate_v1.1.0_a.lz4']!, Buffer.from('{"brl-migration":2}'));
  const verified = await openMigrationCache(cache.paths);
  await t.throwsAsync(verified!.readTarget('migrate_v1.1.0_a.lz4'), { code: 'MIGRATION_TARGET_MISMATCH', message: /does not match the signed targets metadata/ } as never);
});

test('refuses metadata not signed by the trusted root, and a root the cache chain does not lead from', async (t) => {
  const foreign = await writeSignedMigrationCache(await hostRoot(t), { 'manifest.json': Buffer.from('{}') }, { foreignTimestampKey: true });
  await t.throwsAsync(openMigrationCache(foreign.paths), { code: 'MIGRATION_CACHE_UNTRUSTED', message: /timestamp\.json is not signed by a threshold of the timestamp keys of root v1/ } as never);
  const other = await writeSignedMigrationCache(await hostRoot(t), { 'manifest.json': Buffer.from('{}') });
  await writeFile(other.paths.trustedRoot, foreign.bakedRoot);
  await t.throwsAsync(openMigrationCache(other.paths), { code: 'MIGRATION_CACHE_UNTRUSTED' } as never);
});

test('refuses an intermediate root that the previous root did not sign', async (t) => {
  const cache = await writeSignedMigrationCache(await hostRoot(t), { 'manifest.json': Buffer.from('{}') }, { rotateRoot: true });
  const imposter = await writeSignedMigrationCache(await hostRoot(t), {}, { rotateRoot: true });
  await writeFile(join(cache.paths.metadataDir, '2.root.json'), await readFile(join(imposter.paths.metadataDir, '2.root.json')));
  await t.throwsAsync(openMigrationCache(cache.paths), { message: /2\.root\.json is not signed by a threshold of the root keys of root v1/ });
});

test('nothing cached reads as undefined; a staged cache replaces the live one only on commit and leaves no staging directories', async (t) => {
  const root = await hostRoot(t);
  const first = await writeSignedMigrationCache(root, { 'manifest.json': Buffer.from('{"first":1}') });
  const live = await openMigrationCache(first.paths);
  t.deepEqual(await live!.readTarget('manifest.json'), Buffer.from('{"first":1}'));

  const staged = await StagedMigrationCache.create(first.paths, {
    roots: [first.bakedRoot],
    timestamp: await readFile(join(first.paths.metadataDir, 'timestamp.json')),
    snapshot: await readFile(join(first.paths.metadataDir, '3.snapshot.json')),
    targets: await readFile(join(first.paths.metadataDir, '3.targets.json')),
  }, []);
  await staged.discard();
  t.deepEqual(await (await openMigrationCache(first.paths))!.readTarget('manifest.json'), Buffer.from('{"first":1}'), 'a discarded stage leaves the live cache');
  for (const dir of [first.paths.metadataDir, first.paths.targetsDir]) {
    t.deepEqual((await readdir(dirname(dir))).filter((name) => name.startsWith('.')), []);
  }

  const second = await writeSignedMigrationCache(root, { 'manifest.json': Buffer.from('{"second":2}') });
  t.deepEqual(await (await openMigrationCache(second.paths))!.readTarget('manifest.json'), Buffer.from('{"second":2}'), 'a commit swaps in the new cache');
  t.deepEqual(await readdir(second.paths.targetsDir), [basename(second.targetFiles['manifest.json']!)], 'the old cache is gone');
  for (const dir of [first.paths.metadataDir, first.paths.targetsDir]) {
    t.deepEqual((await readdir(dirname(dir))).filter((name) => name.startsWith('.')), []);
  }

  await rm(first.paths.metadataDir, { recursive: true });
  t.is(await openMigrationCache(first.paths), undefined);
});

test('the offline check works bundled as the host ships it (esbuild ES-module chunks, @tufjs/models loaded on demand)', async (t) => {
  const root = await hostRoot(t);
  const cache = await writeSignedMigrationCache(root, { 'migrate_v1.1.0_a.lz4': migration }, { rotateRoot: true });
  const module = new URL('../../../src/lib/update-metadata/migration-cache.ts', import.meta.url).pathname;
  const bundle = bundleAsHost([
    `import { openMigrationCache } from ${JSON.stringify(module)};`,
    `const verified = await openMigrationCache(JSON.parse(process.argv[2]));`,
    `process.stdout.write((await verified.readTarget('migrate_v1.1.0_a.lz4')).toString());`,
  ].join('\n'), join(root, 'bundle'));
  const output = execFileSync(process.execPath, [bundle, JSON.stringify(cache.paths)], { encoding: 'utf8' });
  t.is(output, migration.toString());
});
