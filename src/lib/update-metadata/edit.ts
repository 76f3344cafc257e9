// Manifest edits with pubsys/updata semantics: add/remove an update, set waves, max_version, migrations.
import { BrlError, ExitCode } from '../core/errors.ts';
import { type Manifest, type Update, type UpdateImages, migrationKey, parseMigrationKey } from './manifest.ts';
import { wavesFromPolicy, type WavePolicyEntry } from './waves.ts';
import { compareVersions, formatVersion, maxVersion, parseVersion, type Version } from './version.ts';

/** Which update an edit addresses. */
export interface UpdateKey {
  variant: string;
  arch: string;
  version: string;
}

function sameVersion(a: string, b: Version): boolean {
  return compareVersions(parseVersion(a, 'version'), b) === 0;
}

function findIndex(manifest: Manifest, key: UpdateKey): number {
  const version = parseVersion(key.version, 'version');
  return manifest.updates.findIndex(
    (update) => update.variant === key.variant && update.arch === key.arch && sameVersion(update.version, version),
  );
}

/** The update for `key` (versions compared as versions), if the manifest has it. */
export function findUpdate(manifest: Manifest, key: UpdateKey): Update | undefined {
  return manifest.updates[findIndex(manifest, key)];
}

function notFound(key: UpdateKey): BrlError {
  return new BrlError(`manifest has no update for variant ${key.variant}, arch ${key.arch}, version ${key.version}`, {
    hint: 'list the manifest\'s updates with `brl repo manifest validate` and check variant, arch and version',
    exitCode: ExitCode.notFound,
    code: 'UPDATE_NOT_FOUND',
  });
}

/**
 * Appends an update (with empty waves). Without `maxVersion` the ceiling becomes
 * max(new version, first update's max_version); every update of the same variant and arch then
 * gets that ceiling, as pubsys does. Refuses a second update with the same variant, arch, version.
 */
export function addUpdate(
  manifest: Manifest,
  update: UpdateKey & { maxVersion?: string; images: UpdateImages },
): Manifest {
  const version = parseVersion(update.version, 'version');
  if (findIndex(manifest, update) >= 0) {
    throw new BrlError(`manifest already has an update for variant ${update.variant}, arch ${update.arch}, version ${update.version}`, {
      hint: 'remove it first (`brl repo manifest remove-update`), or bump the release version',
      exitCode: ExitCode.conflict,
      code: 'UPDATE_EXISTS',
    });
  }
  const first = manifest.updates[0];
  const ceiling = update.maxVersion !== undefined
    ? parseVersion(update.maxVersion, 'max_version')
    : first ? maxVersion(version, parseVersion(first.max_version, 'max_version')) : version;
  const ceilingText = formatVersion(ceiling);
  const updates: Update[] = manifest.updates.map((existing) =>
    existing.variant === update.variant && existing.arch === update.arch ? { ...existing, max_version: ceilingText } : existing,
  );
  updates.push({
    variant: update.variant,
    arch: update.arch,
    version: formatVersion(version),
    max_version: ceilingText,
    waves: {},
    images: { ...update.images },
  });
  return { ...manifest, updates };
}

/** Removes one update; never lowers anyone's max_version. */
export function removeUpdate(manifest: Manifest, key: UpdateKey): Manifest {
  const index = findIndex(manifest, key);
  if (index < 0) throw notFound(key);
  return { ...manifest, updates: manifest.updates.filter((_, position) => position !== index) };
}

/** Replaces an update's waves with those of `policy`, offsets counted from `releaseStartMs`. */
export function setWaves(manifest: Manifest, key: UpdateKey, policy: readonly WavePolicyEntry[], releaseStartMs: number): Manifest {
  const index = findIndex(manifest, key);
  if (index < 0) throw notFound(key);
  const waves = wavesFromPolicy(policy, releaseStartMs);
  return { ...manifest, updates: manifest.updates.map((update, position) => (position === index ? { ...update, waves } : update)) };
}

/** Sets max_version on every update of every variant and arch (pulls or re-allows releases). */
export function setMaxVersion(manifest: Manifest, version: string): Manifest {
  const ceiling = formatVersion(parseVersion(version, 'max_version'));
  return { ...manifest, updates: manifest.updates.map((update) => ({ ...update, max_version: ceiling })) };
}

/** Replaces the whole migrations map (Release.toml `[migrations]` is the source of truth). */
export function setMigrations(manifest: Manifest, migrations: Record<string, readonly string[]>): Manifest {
  const normalized: Record<string, string[]> = {};
  for (const [key, names] of Object.entries(migrations)) {
    const pair = parseMigrationKey(key);
    if (!pair) {
      throw new BrlError(`migrations: key ${JSON.stringify(key)} must look like "(1.0.0, 1.1.0)"`, {
        exitCode: ExitCode.badInput,
        code: 'BAD_MIGRATIONS',
      });
    }
    normalized[migrationKey(pair.from, pair.to)] = [...names];
  }
  return { ...manifest, migrations: normalized };
}
