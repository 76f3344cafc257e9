import test from 'ava';
import { createHash } from 'node:crypto';
import { copyFile, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Updater, type Fetcher } from 'tuf-js';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import { applyUpdate, checkUpdate } from '../../../src/lib/updog/index.ts';
import { parseManifest } from '../../../src/lib/update-metadata/index.ts';
import { migrationCachePaths, openMigrationCache } from '../../../src/lib/update-metadata/migration-cache.ts';
import { buildRelease, makeHost, startRepository } from './fixtures.ts';
import { scratchDir } from '../signpost/fixtures.ts';

/** Serves `http://cache/metadata/<file>` from a directory, as an offline migrator would. */
class DirectoryFetcher implements Fetcher {
  readonly #dir: string;
  constructor(dir: string) {
    this.#dir = dir;
  }
  async downloadBytes(url: string): Promise<Buffer> {
    try {
      return await readFile(join(this.#dir, url.slice(url.lastIndexOf('/') + 1)));
    } catch {
      throw new DownloadHTTPError('not cached', 404);
    }
  }
  async downloadFile<T>(): Promise<T> {
    throw new Error('not used');
  }
}

test('migrations and manifest.json are cached with metadata that tuf-js verifies offline', async (t) => {
  const release = await buildRelease('1.1.0');
  const migration = Buffer.from('{"brl-migration": 1, "version": "1.1.0", "name": "rename", "forward": [], "backward": []}');
  const repo = await startRepository([release], { 'migrate_v1.1.0_rename.lz4': migration }, { '(1.0.0, 1.1.0)': ['migrate_v1.1.0_rename.lz4'] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.0.0');
  const result = await applyUpdate({ root: host.root, disk: host.disk, activate: true, ignoreWaves: true });
  t.deepEqual(result.migrations, ['migrate_v1.1.0_rename.lz4', 'manifest.json']);
  await repo.server.close();

  const metadataDir = join(host.root, 'var', 'cache', 'bottlerocket-metadata');
  const targetsDir = join(host.root, 'var', 'lib', 'bottlerocket-migrations');
  const trust = await scratchDir('brl-migrator-');
  await copyFile(join(host.root, 'usr', 'share', 'updog', 'root.json'), join(trust, 'root.json'));
  const updater = new Updater({ metadataDir: trust, metadataBaseUrl: 'http://cache/metadata', fetcher: new DirectoryFetcher(metadataDir) });
  for (const name of ['migrate_v1.1.0_rename.lz4', 'manifest.json']) {
    const info = await updater.getTargetInfo(name);
    const cached = await readFile(join(targetsDir, `${info!.hashes.sha256!}.${name}`));
    t.is(cached.length, info!.length);
    t.is(createHash('sha256').update(cached).digest('hex'), info!.hashes.sha256!);
  }
  const manifest = parseManifest((await readFile(join(targetsDir, `${(await updater.getTargetInfo('manifest.json'))!.hashes.sha256!}.manifest.json`))).toString());
  t.deepEqual(manifest.migrations, { '(1.0.0, 1.1.0)': ['migrate_v1.1.0_rename.lz4'] });
});

test('an update whose migrations fail to download keeps the old cache and the staged inactive set', async (t) => {
  const release = await buildRelease('1.1.0');
  const migration = Buffer.from('{"brl-migration": 1, "version": "1.1.0", "name": "rename", "forward": [], "backward": []}');
  const repo = await startRepository([release], { 'migrate_v1.1.0_rename.lz4': migration }, { '(1.0.0, 1.1.0)': ['migrate_v1.1.0_rename.lz4'] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.0.0');
  await applyUpdate({ root: host.root, disk: host.disk, activate: false, ignoreWaves: true });
  const gptBefore = (await readFile(host.disk)).subarray(0, 64 * 1024);

  await repo.publish({ corrupt: ['migrate_v1.1.0_rename.lz4'] });
  await t.throwsAsync(applyUpdate({ root: host.root, disk: host.disk, activate: false, ignoreWaves: true }),
    { code: 'TARGET_MISMATCH' } as never);
  t.deepEqual((await readFile(host.disk)).subarray(0, 64 * 1024), gptBefore, 'the inactive set was not cleared');
  const cache = await openMigrationCache(migrationCachePaths(host.root));
  t.deepEqual(await cache!.readTarget('migrate_v1.1.0_rename.lz4'), migration, 'the previous cache still verifies');
  const parents = [join(host.root, 'var', 'cache'), join(host.root, 'var', 'lib')];
  for (const parent of parents) t.deepEqual((await readdir(parent)).filter((name) => name.startsWith('.')), [], 'no staging directory left');
});

test('the cached root chain runs from the baked root through every rotation, each verified against the one before', async (t) => {
  const release = await buildRelease('1.1.0');
  const migration = Buffer.from('{"brl-migration": 1, "version": "1.1.0", "name": "rename", "forward": [], "backward": []}');
  const repo = await startRepository([release], { 'migrate_v1.1.0_rename.lz4': migration }, { '(1.0.0, 1.1.0)': ['migrate_v1.1.0_rename.lz4'] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.0.0');
  const rootV2 = await repo.rotateRoot();
  await repo.rotateRoot();
  // An earlier run left tuf-js trusting v3, so it never fetches v2 again; only the cache does.
  await checkUpdate({ root: host.root, ignoreWaves: true });
  const forged = JSON.parse(rootV2.toString('utf8')) as { signed: { expires: string } };
  forged.signed.expires = '2099-01-01T00:00:00Z';
  repo.serveMetadata('2.root.json', Buffer.from(JSON.stringify(forged)));
  const gptBefore = (await readFile(host.disk)).subarray(0, 64 * 1024);
  await t.throwsAsync(applyUpdate({ root: host.root, disk: host.disk, activate: true, ignoreWaves: true }),
    { code: 'MIGRATION_CACHE_UNTRUSTED', message: /2\.root\.json is not signed by a threshold of the root keys of root v1/ } as never);
  t.deepEqual((await readFile(host.disk)).subarray(0, 64 * 1024), gptBefore, 'nothing was written');

  repo.serveMetadata('2.root.json', rootV2);
  await applyUpdate({ root: host.root, disk: host.disk, activate: true, ignoreWaves: true });
  const paths = migrationCachePaths(host.root);
  t.deepEqual((await readdir(paths.metadataDir)).filter((name) => name.endsWith('.root.json')).sort(), ['1.root.json', '2.root.json', '3.root.json']);
  t.deepEqual(await (await openMigrationCache(paths))!.readTarget('migrate_v1.1.0_rename.lz4'), migration);
});
