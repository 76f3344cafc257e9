// Which update a host takes: variant, arch, max_version, waves, version lock, --image; and its migrations.
import { BrlError, ExitCode } from '../core/errors.ts';
import { type Manifest, type Update, parseMigrationKey } from './manifest.ts';
import { isUpdateReady } from './waves.ts';
import { compareVersions, formatVersion, parseVersion, type Version } from './version.ts';

/** What the host knows about itself when choosing. */
export interface HostUpdateState {
  variant: string;
  arch: string;
  /** Running version (os-release VERSION_ID). */
  version: string;
  seed: number;
  /** `"latest"` or a version, optionally with a leading `v`. */
  versionLock: string;
  ignoreWaves: boolean;
  nowMs: number;
}

/**
 * Updates this host may take, newest first: same variant and arch, version ≤ its max_version, and
 * (waves ignored or) its wave has reached the host's seed.
 */
export function applicableUpdates(manifest: Manifest, host: HostUpdateState): Update[] {
  return manifest.updates
    .filter((update) =>
      update.variant === host.variant &&
      update.arch === host.arch &&
      compareVersions(parseVersion(update.version, 'version'), parseVersion(update.max_version, 'max_version')) <= 0 &&
      (host.ignoreWaves || isUpdateReady(update, host.seed, host.nowMs)))
    .sort((a, b) => compareVersions(parseVersion(b.version, 'version'), parseVersion(a.version, 'version')));
}

/**
 * The update to apply, or undefined when none is needed. `image` (from `--image`) may pick a
 * downgrade; a host above an update's max_version is moved down to the highest visible release.
 */
export function chooseUpdate(manifest: Manifest, host: HostUpdateState, image?: string): Update | undefined {
  const running = parseVersion(host.version, 'running version (os-release VERSION_ID)');
  const candidates = applicableUpdates(manifest, host);
  if (image !== undefined) {
    const wanted = parseVersion(image, '--image');
    const match = candidates.find((update) => compareVersions(parseVersion(update.version, 'version'), wanted) === 0);
    if (!match) {
      throw new BrlError(`no applicable update with version ${image} for ${host.variant} on ${host.arch}`, {
        hint: 'run `updog check-update --all` to list what this host may take (add --now to ignore waves)',
        exitCode: ExitCode.notFound,
        code: 'NO_SUCH_UPDATE',
      });
    }
    return match;
  }
  if (host.versionLock !== 'latest') {
    const locked = parseVersion(host.versionLock.replace(/^v/, ''), 'version_lock');
    if (compareVersions(locked, running) === 0) return undefined;
    return candidates.find((update) => compareVersions(parseVersion(update.version, 'version'), locked) === 0);
  }
  return candidates.find((update) => {
    const version = parseVersion(update.version, 'version');
    return compareVersions(running, version) < 0 || compareVersions(running, parseVersion(update.max_version, 'max_version')) > 0;
  });
}

/**
 * Migration target names needed between two versions: walk from the lower version taking the edge
 * that reaches furthest (shortcuts allowed) until the higher; reversed for a downgrade.
 */
export function findMigrations(manifest: Manifest, from: string, to: string): string[] {
  const a = parseVersion(from, 'from version');
  const b = parseVersion(to, 'to version');
  const downgrade = compareVersions(a, b) > 0;
  const [low, high] = downgrade ? [b, a] : [a, b];
  const edges = Object.entries(manifest.migrations).map(([key, names]) => ({ ...parseMigrationKey(key)!, names }));
  const names: string[] = [];
  let current: Version = low;
  while (compareVersions(current, high) < 0) {
    let best: (typeof edges)[number] | undefined;
    for (const edge of edges) {
      if (compareVersions(edge.from, current) !== 0 || compareVersions(edge.to, high) > 0) continue;
      if (compareVersions(edge.to, current) <= 0) continue;
      if (!best || compareVersions(edge.to, best.to) > 0) best = edge;
    }
    if (!best) {
      throw new BrlError(`manifest.json has no migration path from ${from} to ${to} (stuck at ${formatVersion(current)})`, {
        hint: 'list every release pair in Release.toml [migrations], using [] for releases without migrations',
        exitCode: ExitCode.badInput,
        code: 'MISSING_MIGRATION',
      });
    }
    names.push(...best.names);
    current = best.to;
  }
  return downgrade ? names.reverse() : names;
}
