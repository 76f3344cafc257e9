// Fixed paths of an updog host, below its root directory.
import { join } from 'node:path';

export function hostPaths(root: string): {
  config: string;
  osRelease: string;
  trustedRoot: string;
  tufState: string;
  migrationMetadata: string;
  migrationTargets: string;
} {
  return {
    config: join(root, 'etc', 'updog.toml'),
    osRelease: join(root, 'usr', 'lib', 'os-release'),
    trustedRoot: join(root, 'usr', 'share', 'updog', 'root.json'),
    /** tuf-js's verified metadata, kept between runs for rollback protection (brl addition). */
    tufState: join(root, 'var', 'lib', 'updog', 'metadata'),
    migrationMetadata: join(root, 'var', 'cache', 'bottlerocket-metadata'),
    migrationTargets: join(root, 'var', 'lib', 'bottlerocket-migrations'),
  };
}
