// Stages the migrations an update needs, with the signed metadata that vouches for them, so the
// migrator can re-verify them offline at the next boot (update-metadata/migration-cache.ts).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { migrationCachePaths, StagedMigrationCache } from '../update-metadata/migration-cache.ts';
import type { UpdateRepository } from './repository.ts';
import { getBytes, type TransportOptions } from './http.ts';
import { hostPaths } from './paths.ts';

function versionOf(document: Buffer): number {
  return (JSON.parse(document.toString('utf8')) as { signed: { version: number } }).signed.version;
}

/**
 * Builds the new cache beside the live one: the root chain from the baked root to the one tuf-js
 * trusts (roots tuf-js walked in earlier runs are fetched again), the timestamp, snapshot and
 * targets tuf-js verified in this run, and each target verified as it downloads. Before it is
 * returned the staged cache passes the same offline check the migrator runs at boot, so every
 * intermediate root is verified against the one before it. The caller swaps it in (`commit`)
 * once the inactive set is cleared, or `discard`s it.
 */
export async function stageMigrations(
  hostRoot: string,
  repository: UpdateRepository,
  transport: TransportOptions,
  targetNames: readonly string[],
): Promise<StagedMigrationCache> {
  const paths = hostPaths(hostRoot);
  const baked = await readFile(paths.trustedRoot);
  const trusted = await readFile(join(repository.metadataDir, 'root.json'));
  const bakedVersion = versionOf(baked);
  const trustedVersion = versionOf(trusted);
  const roots: Buffer[] = [baked];
  for (let version = bakedVersion + 1; version < trustedVersion; version++) {
    roots.push(await getBytes(`${repository.location.metadataBaseUrl.replace(/\/+$/, '')}/${version}.root.json`, transport, 1024 * 1024));
  }
  if (trustedVersion > bakedVersion) roots.push(trusted);
  const metadata = {
    roots,
    timestamp: await readFile(join(repository.metadataDir, 'timestamp.json')),
    snapshot: await readFile(join(repository.metadataDir, 'snapshot.json')),
    targets: await readFile(join(repository.metadataDir, 'targets.json')),
  };
  const targets = [];
  for (const name of targetNames) {
    const info = await repository.targetInfo(name);
    targets.push({ name, sha256: info.hashes.sha256!, bytes: await repository.readTarget(name) });
  }
  const staged = await StagedMigrationCache.create(migrationCachePaths(hostRoot), metadata, targets);
  try {
    await staged.verify(targetNames);
  } catch (error) {
    await staged.discard();
    throw error;
  }
  return staged;
}
