// Caches the migrations an update needs, with the signed metadata that vouches for them, so the
// migrator can re-verify them offline at the next boot (tough's cache layout: a file TUF repo).
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/fs.ts';
import type { UpdateRepository } from './repository.ts';
import { getBytes, type TransportOptions } from './http.ts';
import { hostPaths } from './paths.ts';

function versionOf(document: Buffer): number {
  return (JSON.parse(document.toString('utf8')) as { signed: { version: number } }).signed.version;
}

export interface CachedMigrations {
  metadataDir: string;
  targetsDir: string;
  /** Target names cached (migrations plus manifest.json). */
  targets: string[];
}

/**
 * Writes `<metadata>/N.root.json` for the whole root chain from the baked root to the trusted
 * one, `timestamp.json`, `<v>.snapshot.json`, `<v>.targets.json`, and each target verified as
 * `<targets>/<sha256>.<name>`. Old cache contents are replaced.
 */
export async function cacheMigrations(
  hostRoot: string,
  repository: UpdateRepository,
  transport: TransportOptions,
  targetNames: readonly string[],
): Promise<CachedMigrations> {
  const paths = hostPaths(hostRoot);
  const metadataDir = paths.migrationMetadata;
  const targetsDir = paths.migrationTargets;
  await rm(metadataDir, { recursive: true, force: true });
  await rm(targetsDir, { recursive: true, force: true });
  await mkdir(metadataDir, { recursive: true });
  await mkdir(targetsDir, { recursive: true });

  const baked = await readFile(paths.trustedRoot);
  const trusted = await readFile(join(repository.metadataDir, 'root.json'));
  const bakedVersion = versionOf(baked);
  const trustedVersion = versionOf(trusted);
  await copyFile(paths.trustedRoot, join(metadataDir, `${bakedVersion}.root.json`));
  for (let version = bakedVersion + 1; version < trustedVersion; version++) {
    const url = `${repository.location.metadataBaseUrl.replace(/\/+$/, '')}/${version}.root.json`;
    await writeFileAtomic(join(metadataDir, `${version}.root.json`), await getBytes(url, transport, 1024 * 1024));
  }
  if (trustedVersion > bakedVersion) await writeFileAtomic(join(metadataDir, `${trustedVersion}.root.json`), trusted);
  const timestamp = await readFile(join(repository.metadataDir, 'timestamp.json'));
  const snapshot = await readFile(join(repository.metadataDir, 'snapshot.json'));
  const targets = await readFile(join(repository.metadataDir, 'targets.json'));
  await writeFileAtomic(join(metadataDir, `${versionOf(snapshot)}.snapshot.json`), snapshot);
  await writeFileAtomic(join(metadataDir, `${versionOf(targets)}.targets.json`), targets);
  // Written last: its presence says the rest of the metadata is complete.
  await writeFileAtomic(join(metadataDir, 'timestamp.json'), timestamp);

  for (const name of targetNames) {
    const info = await repository.targetInfo(name);
    await writeFileAtomic(join(targetsDir, `${info.hashes.sha256}.${name}`), await repository.readTarget(name));
  }
  return { metadataDir, targetsDir, targets: [...targetNames] };
}
