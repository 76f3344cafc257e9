import test from 'ava';
import { createHash } from 'node:crypto';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Updater, type Fetcher } from 'tuf-js';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';
import { applyUpdate } from '../../../src/lib/updog/index.ts';
import { parseManifest } from '../../../src/lib/update-metadata/index.ts';
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
