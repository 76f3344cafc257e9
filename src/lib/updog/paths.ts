// Fixed paths of an updog host, below its root directory.
import { join } from 'node:path';
import { migrationCachePaths } from '../update-metadata/migration-cache.ts';

export function hostPaths(root: string): {
  config: string;
  osRelease: string;
  trustedRoot: string;
  tufState: string;
  partialDownloads: string;
  migrationMetadata: string;
  migrationTargets: string;
} {
  const cache = migrationCachePaths(root);
  return {
    config: join(root, 'etc', 'updog.toml'),
    osRelease: join(root, 'usr', 'lib', 'os-release'),
    trustedRoot: cache.trustedRoot,
    /** tuf-js's verified metadata, kept between runs for rollback protection (brl addition). */
    tufState: join(root, 'var', 'lib', 'updog', 'metadata'),
    /** Image bytes a run received before it gave up, for the next run to resume from (brl addition). */
    partialDownloads: join(root, 'var', 'cache', 'updog', 'partial'),
    migrationMetadata: cache.metadataDir,
    migrationTargets: cache.targetsDir,
  };
}
