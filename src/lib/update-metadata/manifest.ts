// The manifest.json model (updates, waves, max_version, migrations): parse, validate, serialize.
import { BrlError, ExitCode } from '../core/errors.ts';
import { findDuplicateKey } from './json-keys.ts';
import { parseRfc3339 } from './time.ts';
import { compareVersions, formatVersion, tryParseVersion, type Version } from './version.ts';

/** TUF target names of one release's update images. */
export interface UpdateImages {
  boot: string;
  root: string;
  hash: string;
}

/** One published release for one variant and arch, exactly as manifest.json stores it. */
export interface Update {
  variant: string;
  arch: string;
  version: string;
  max_version: string;
  /** First seed of each wave (decimal u32) → RFC 3339 UTC time that wave starts. */
  waves: Record<string, string>;
  images: UpdateImages;
}

export interface Manifest {
  updates: Update[];
  /** `"(FROM, TO)"` → migration target names, in the order they run. */
  migrations: Record<string, string[]>;
}

/** Highest seed a host can draw is MAX_SEED − 1. */
export const MAX_SEED = 2048;
const U32_MAX = 0xffff_ffff;

export function emptyManifest(): Manifest {
  return { updates: [], migrations: {} };
}

function invalid(source: string, where: string, message: string): BrlError {
  return new BrlError(`${source}: ${where}: ${message}`, {
    hint: 'fix the manifest, or rebuild it with brl repo manifest add-update (see brl repo manifest --help)',
    exitCode: ExitCode.badInput,
    code: 'BAD_MANIFEST',
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readVersionField(source: string, where: string, value: unknown): string {
  if (typeof value !== 'string' || !tryParseVersion(value)) {
    throw invalid(source, where, `must be a semantic version such as "1.26.1", got ${JSON.stringify(value)}`);
  }
  return value;
}

function readStringField(source: string, where: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw invalid(source, where, `must be a non-empty string, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** A wave key as a u32 seed; decimal digits only, like upstream's `u32::from_str`. */
export function parseWaveSeed(key: string): number | undefined {
  if (!/^\+?\d+$/.test(key)) return undefined;
  const seed = Number(key);
  return seed <= U32_MAX ? seed : undefined;
}

/** `"(1.0.0, 1.1.0)"` / `"(1.0.0,1.1.0)"` → the two versions. */
export function parseMigrationKey(key: string): { from: Version; to: Version } | undefined {
  const match = /^\((\S+?),\s*(\S+?)\)$/.exec(key);
  if (!match) return undefined;
  const from = tryParseVersion(match[1]!);
  const to = tryParseVersion(match[2]!);
  return from && to ? { from, to } : undefined;
}

export function migrationKey(from: Version, to: Version): string {
  return `(${formatVersion(from)}, ${formatVersion(to)})`;
}

function parseWaves(source: string, where: string, value: unknown): Record<string, string> {
  if (!isObject(value)) throw invalid(source, where, 'must be an object of seed → RFC 3339 time');
  const waves: Record<string, string> = {};
  for (const [key, time] of Object.entries(value)) {
    const seed = parseWaveSeed(key);
    if (seed === undefined) throw invalid(source, `${where}.${key}`, 'wave key must be an unsigned 32-bit seed');
    if (String(seed) in waves) throw invalid(source, `${where}.${key}`, `duplicate wave seed ${seed}`);
    if (typeof time !== 'string' || parseRfc3339(time) === undefined) {
      throw invalid(source, `${where}.${key}`, `must be an RFC 3339 time, got ${JSON.stringify(time)}`);
    }
    waves[String(seed)] = time;
  }
  return waves;
}

function parseUpdate(source: string, index: number, value: unknown): Update {
  const where = `updates[${index}]`;
  if (!isObject(value)) throw invalid(source, where, 'must be an object');
  const images = value.images;
  if (!isObject(images)) throw invalid(source, `${where}.images`, 'must be an object with boot, root and hash');
  return {
    variant: readStringField(source, `${where}.variant`, value.variant),
    arch: readStringField(source, `${where}.arch`, value.arch),
    version: readVersionField(source, `${where}.version`, value.version),
    max_version: readVersionField(source, `${where}.max_version`, value.max_version),
    waves: parseWaves(source, `${where}.waves`, value.waves ?? {}),
    images: {
      boot: readStringField(source, `${where}.images.boot`, images.boot),
      root: readStringField(source, `${where}.images.root`, images.root),
      hash: readStringField(source, `${where}.images.hash`, images.hash),
    },
  };
}

function parseMigrations(source: string, value: unknown): Record<string, string[]> {
  if (!isObject(value)) throw invalid(source, 'migrations', 'must be an object of "(FROM, TO)" → [names]');
  const migrations: Record<string, string[]> = {};
  for (const [key, names] of Object.entries(value)) {
    const pair = parseMigrationKey(key);
    if (!pair) throw invalid(source, `migrations.${key}`, 'key must look like "(1.0.0, 1.1.0)"');
    const normalized = migrationKey(pair.from, pair.to);
    if (normalized in migrations) throw invalid(source, `migrations.${key}`, `duplicate migration key ${normalized}`);
    if (!Array.isArray(names) || names.some((name) => typeof name !== 'string' || name === '')) {
      throw invalid(source, `migrations.${key}`, 'must be an array of migration target names');
    }
    migrations[normalized] = names as string[];
  }
  return migrations;
}

/**
 * Parses manifest.json text. Unknown fields (such as the retired `datastore_version`) are ignored,
 * as upstream does; everything updog relies on is checked. `source` names the file in errors.
 */
export function parseManifest(text: string, source = 'manifest.json'): Manifest {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw invalid(source, 'JSON', (error as Error).message);
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate) throw invalid(source, duplicate.path, `duplicate key ${JSON.stringify(duplicate.key)}`);
  if (!isObject(document)) throw invalid(source, '$', 'must be an object with "updates" and "migrations"');
  if (!Array.isArray(document.updates)) throw invalid(source, 'updates', 'must be an array');
  const manifest: Manifest = {
    updates: document.updates.map((update, index) => parseUpdate(source, index, update)),
    migrations: parseMigrations(source, document.migrations ?? {}),
  };
  return manifest;
}

/**
 * Checks the rules editing tools must keep (upstream `updata validate` plus brl's): wave times
 * strictly increase with the seed, no two updates share variant, arch and version.
 */
export function validateManifest(manifest: Manifest, source = 'manifest.json'): void {
  const seen = new Set<string>();
  manifest.updates.forEach((update, index) => {
    const identity = `${update.variant}/${update.arch}/${formatVersion(tryParseVersion(update.version)!)}`;
    if (seen.has(identity)) throw invalid(source, `updates[${index}]`, `a second update for ${identity}`);
    seen.add(identity);
    let previous: { seed: number; time: number } | undefined;
    for (const { seed, time } of sortedWaves(update)) {
      if (previous && time <= previous.time) {
        throw invalid(source, `updates[${index}].waves.${seed}`,
          `wave ${seed} starts no later than wave ${previous.seed}; wave times must increase with the seed`);
      }
      previous = { seed, time };
    }
  });
}

/** The waves of an update as `{seed, time (epoch ms)}`, ordered by seed. */
export function sortedWaves(update: Update): { seed: number; time: number }[] {
  return Object.entries(update.waves)
    .map(([key, time]) => ({ seed: parseWaveSeed(key)!, time: parseRfc3339(time)! }))
    .sort((a, b) => a.seed - b.seed);
}

/**
 * Deterministic manifest.json text: upstream's field order, waves by seed, migrations by version
 * pair, two-space indentation (as serde_json's pretty printer), no trailing newline.
 */
export function serializeManifest(manifest: Manifest): string {
  const updates = manifest.updates.map((update) => ({
    variant: update.variant,
    arch: update.arch,
    version: update.version,
    max_version: update.max_version,
    waves: Object.fromEntries(
      Object.entries(update.waves).sort(([a], [b]) => parseWaveSeed(a)! - parseWaveSeed(b)!),
    ),
    images: { boot: update.images.boot, root: update.images.root, hash: update.images.hash },
  }));
  const migrationKeys = Object.keys(manifest.migrations)
    .map((key) => ({ key, pair: parseMigrationKey(key)! }))
    .sort((a, b) => compareVersions(a.pair.from, b.pair.from) || compareVersions(a.pair.to, b.pair.to));
  const migrations = Object.fromEntries(
    migrationKeys.map(({ key, pair }) => [migrationKey(pair.from, pair.to), manifest.migrations[key]!]),
  );
  return renderJson({ updates, migrations }, '');
}

// Integer-like keys iterate in numeric order and the one u32 that is not an array index
// (2^32 − 1) is also the largest, so sorted wave objects keep their order here.
function renderJson(value: unknown, indent: string): string {
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((item) => `${inner}${renderJson(item, inner)}`).join(',\n')}\n${indent}]`;
  }
  if (isObject(value)) {
    const entries = Object.entries(value);
    if (entries.length === 0) return '{}';
    return `{\n${entries.map(([key, item]) => `${inner}${JSON.stringify(key)}: ${renderJson(item, inner)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value);
}
