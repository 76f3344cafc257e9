// Release.toml at the project root: the OS version every image carries, and its migrations.
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { loadToml, readString, readStringArray, readTable, rejectUnknownKeys, tomlKeyError } from '../core/toml.ts';

export interface MigrationStep {
  from: string;
  to: string;
  /** Migration target names, e.g. `migrate_v1.26.0_foo.lz4`. */
  migrations: string[];
}

export interface ReleaseInfo {
  path: string;
  version: string;
  migrations: MigrationStep[];
}

const semver = /^\d+\.\d+\.\d+$/;
const migrationKey = /^\(\s*(v?\d+\.\d+\.\d+)\s*,\s*(v?\d+\.\d+\.\d+)\s*\)$/;

export async function loadRelease(projectDir: string): Promise<ReleaseInfo> {
  const path = join(projectDir, 'Release.toml');
  const doc = await loadToml(path);
  rejectUnknownKeys(doc, doc.data, ['version', 'migrations']);
  const version = readString(doc, doc.data, 'version');
  if (version === undefined) throw tomlKeyError(doc, 'version', 'is required (e.g. version = "1.0.0")');
  if (!semver.test(version)) throw tomlKeyError(doc, 'version', `"${version}" must be MAJOR.MINOR.PATCH`);
  const table = readTable(doc, doc.data, 'migrations') ?? {};
  const migrations = Object.keys(table).map((key) => {
    const match = migrationKey.exec(key);
    if (!match) throw tomlKeyError(doc, `migrations.${key}`, 'must look like "(1.0.0, 1.1.0)"');
    return {
      from: (match[1] as string).replace(/^v/, ''),
      to: (match[2] as string).replace(/^v/, ''),
      migrations: readStringArray(doc, table, key, 'migrations.') ?? [],
    };
  });
  return { path, version, migrations };
}

/**
 * Bottlerocket's build takes the image version from `BUILDSYS_VERSION_IMAGE` (its Makefile sets it
 * from Release.toml); set, it overrides Release.toml's version for this build, e.g. to build the
 * next version of an image for an update test without editing the file.
 */
export function withVersionOverride(release: ReleaseInfo, env: NodeJS.ProcessEnv): ReleaseInfo {
  const version = env.BUILDSYS_VERSION_IMAGE;
  if (version === undefined || version === '') return release;
  if (!semver.test(version)) {
    throw new BrlError(`BUILDSYS_VERSION_IMAGE="${version}" must be MAJOR.MINOR.PATCH`, { exitCode: ExitCode.usage, code: 'BAD_ENVIRONMENT' });
  }
  return { ...release, version };
}
