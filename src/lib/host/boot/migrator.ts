// migrator: moves the datastore to the os-release version with declarative JSON migrations, both directions.
import { mkdir, open, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errnoCode } from '../../core/errors.ts';
import { createLz4Decoder } from '../../image/lz4.ts';
import { migrationCachePaths, openMigrationCache, type VerifiedMigrationCache } from '../../update-metadata/migration-cache.ts';
import { compareVersions, parseVersion as parseSemver } from '../../update-metadata/version.ts';
import { keyName, parseKey, isSegmentPrefix } from '../datastore/key.ts';
import { fsyncDirectory } from '../../core/fs.ts';
import { linkChain, parseVersion, randomAlnum, readVersionChain } from '../datastore/layout.ts';
import { dataPath, metaPath, walkTree, type StoredEntry } from '../datastore/files.ts';
import { DELETE_MARKER } from '../datastore/pending.ts';
import { Datastore } from '../datastore/store.ts';
import type { HostPaths } from '../paths.ts';

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

export type MigrationOp =
  | { op: 'add'; key: string; value: unknown; meta?: string }
  | { op: 'remove'; key: string; prefix?: boolean; meta?: string }
  | { op: 'rename'; from: string; to: string; prefix?: boolean; meta?: string }
  | { op: 'set-default'; key: string; from: unknown; to: unknown; meta?: string }
  | { op: 'transform'; key: string; regex: string; replace: string; prefix?: boolean; on?: 'value' | 'name'; meta?: string };

export interface Migration {
  'brl-migration': 1;
  version: string;
  name: string;
  forward: MigrationOp[];
  backward: MigrationOp[];
}

export interface MigratorResult {
  from: string;
  to: string;
  direction: 'none' | 'forward' | 'backward';
  applied: string[];
}

/** One key space: data values and metadata (`<key>` → meta name → value). */
interface Tree {
  data: Map<string, StoredEntry>;
  meta: Map<string, Map<string, unknown>>;
}

/**
 * Verifies the migration cache offline against the root baked into this image
 * (update-metadata/migration-cache.ts), takes the chain between the datastore's version and the
 * os-release one from its `manifest.json`, runs it over live and every pending transaction into a
 * new version directory, then flips the links. Any failure leaves the datastore and its links as
 * they were, so the boot fails and the host falls back to the previous version.
 */
export async function runMigrator(paths: HostPaths, targetVersion: string): Promise<MigratorResult> {
  const chain = await readVersionChain(paths.datastoreBase);
  if (!chain) return { from: targetVersion, to: targetVersion, direction: 'none', applied: [] };
  const from = chain.version;
  const order = compareVersions(parseSemver(from, `datastore version (${chain.versionDir})`), parseSemver(targetVersion, 'os-release VERSION_ID'));
  if (order === 0) return { from, to: targetVersion, direction: 'none', applied: [] };
  const direction = order < 0 ? 'forward' : 'backward';
  // Loaded only when the version changed: most boots never need the manifest model.
  const { parseManifest } = await import('../../update-metadata/manifest.ts');
  const { findMigrations } = await import('../../update-metadata/select.ts');

  const cache = await openCache(paths, from, targetVersion);
  const manifest = parseManifest((await cache.readTarget('manifest.json')).toString('utf8'), `${paths.migrationsDir} manifest.json`);
  const names = findMigrations(manifest, from, targetVersion);
  const migrations: Migration[] = [];
  for (const name of names) migrations.push(await loadMigration(await cache.readTarget(name), name));
  if (migrations.length === 0) {
    await linkChain(paths.datastoreBase, parseVersion(targetVersion), basename(chain.versionDir));
    return { from, to: targetVersion, direction, applied: [] };
  }

  // Opening replays the commit log into live/ (and finishes a legacy swap), so the tree read below is every acknowledged commit.
  await Datastore.open(paths.datastoreBase);
  const live = await readTree(join(chain.versionDir, 'live'));
  const pending = new Map<string, Tree>();
  for (const tx of await listDirs(join(chain.versionDir, 'pending'))) {
    pending.set(tx, await readTree(join(chain.versionDir, 'pending', tx)));
  }
  for (const migration of migrations) {
    const ops = direction === 'forward' ? migration.forward : migration.backward;
    for (const op of ops) {
      applyOp(live, op, true);
      for (const tree of pending.values()) applyOp(tree, op, false);
    }
  }
  const dirName = `v${targetVersion}_${randomAlnum(16)}`;
  const versionDir = join(paths.datastoreBase, dirName);
  await writeTree(join(versionDir, 'live'), live, true);
  for (const [tx, tree] of pending) await writeTree(join(versionDir, 'pending', tx), tree, false);
  await fsyncDirectory(versionDir);
  await linkChain(paths.datastoreBase, parseVersion(targetVersion), dirName);
  return { from, to: targetVersion, direction, applied: migrations.map((migration) => migration.name) };
}

/** The verified cache; a version change without one is refused, as upstream's migrator does. */
async function openCache(paths: HostPaths, from: string, to: string): Promise<VerifiedMigrationCache> {
  const cachePaths = migrationCachePaths(paths.root);
  const cache = await openMigrationCache(cachePaths);
  if (!cache) {
    throw new MigrationError(`the datastore is at ${from} and the OS at ${to}, but no migrations are cached in ${cachePaths.metadataDir} (updog caches them with every update)`);
  }
  return cache;
}

async function loadMigration(compressed: Buffer, name: string): Promise<Migration> {
  let migration: Migration;
  try {
    migration = JSON.parse(await lz4Decompress(compressed)) as Migration;
  } catch (error) {
    throw new MigrationError(`migration ${name} is not an LZ4 frame of JSON: ${(error as Error).message}`);
  }
  if (migration['brl-migration'] !== 1 || !Array.isArray(migration.forward) || !Array.isArray(migration.backward)) {
    throw new MigrationError(`migration ${name} is not a brl-migration version 1 document`);
  }
  return migration;
}

/** A migration is a few KiB of JSON: decoded whole, in process (hosts have no lz4 tool). */
async function lz4Decompress(compressed: Buffer): Promise<string> {
  const chunks: Buffer[] = [];
  await pipeline(Readable.from([compressed]), createLz4Decoder(), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) chunks.push(chunk);
  });
  return Buffer.concat(chunks).toString('utf8');
}

// ---- operations ----

export function applyOp(tree: Tree, op: MigrationOp, withMeta: boolean): void {
  if (op.meta !== undefined) {
    if (withMeta) applyMetaOp(tree.meta, op, op.meta);
    return;
  }
  const data = tree.data;
  switch (op.op) {
    case 'add': {
      const segments = parseKey(op.key);
      if (!data.has(keyName(segments))) data.set(keyName(segments), { segments, value: op.value });
      return;
    }
    case 'remove':
      for (const [name, entry] of [...data]) if (matches(op.key, entry.segments, op.prefix)) data.delete(name);
      return;
    case 'rename': {
      const from = parseKey(op.from);
      const to = parseKey(op.to);
      for (const [name, entry] of [...data]) {
        if (!matches(op.from, entry.segments, op.prefix)) continue;
        data.delete(name);
        const segments = [...to, ...entry.segments.slice(from.length)];
        data.set(keyName(segments), { segments, value: entry.value });
      }
      return;
    }
    case 'set-default': {
      const name = keyName(parseKey(op.key));
      const entry = data.get(name);
      if (entry && JSON.stringify(entry.value) === JSON.stringify(op.from)) data.set(name, { ...entry, value: op.to });
      return;
    }
    case 'transform': {
      const regex = new RegExp(op.regex, 'g');
      const base = parseKey(op.key);
      for (const [name, entry] of [...data]) {
        if (!matches(op.key, entry.segments, op.prefix ?? op.on === 'name')) continue;
        if (op.on === 'name') {
          const below = entry.segments.slice(base.length).map((segment) => segment.replace(regex, op.replace));
          const segments = [...base, ...below];
          data.delete(name);
          data.set(keyName(segments), { segments, value: entry.value });
        } else {
          data.set(name, { ...entry, value: transformValue(entry.value, regex, op.replace) });
        }
      }
      return;
    }
    default:
      throw new MigrationError(`unknown migration op '${(op as { op: string }).op}'`);
  }
}

function matches(key: string, segments: readonly string[], prefix: boolean | undefined): boolean {
  const target = parseKey(key);
  return prefix ? isSegmentPrefix(target, segments) : keyName(target) === keyName(segments);
}

function transformValue(value: unknown, regex: RegExp, replace: string): unknown {
  if (typeof value === 'string') return value.replace(regex, replace);
  if (Array.isArray(value)) return value.map((item) => (typeof item === 'string' ? item.replace(regex, replace) : item));
  return value;
}

function applyMetaOp(meta: Map<string, Map<string, unknown>>, op: MigrationOp, metaName: string): void {
  const get = (name: string): unknown => meta.get(name)?.get(metaName);
  const put = (name: string, value: unknown): void => {
    const values = meta.get(name) ?? new Map<string, unknown>();
    values.set(metaName, value);
    meta.set(name, values);
  };
  const names = (key: string, prefix: boolean | undefined): string[] =>
    [...meta.keys()].filter((name) => get(name) !== undefined && matches(key, parseKey(name), prefix));
  switch (op.op) {
    case 'add': {
      const name = keyName(parseKey(op.key));
      if (get(name) === undefined) put(name, op.value);
      return;
    }
    case 'remove':
      for (const name of names(op.key, op.prefix)) meta.get(name)?.delete(metaName);
      return;
    case 'rename': {
      const from = parseKey(op.from);
      const to = parseKey(op.to);
      for (const name of names(op.from, op.prefix)) {
        const value = get(name);
        meta.get(name)?.delete(metaName);
        put(keyName([...to, ...parseKey(name).slice(from.length)]), value);
      }
      return;
    }
    case 'set-default': {
      const name = keyName(parseKey(op.key));
      if (JSON.stringify(get(name)) === JSON.stringify(op.from)) put(name, op.to);
      return;
    }
    case 'transform': {
      const regex = new RegExp(op.regex, 'g');
      for (const name of names(op.key, op.prefix)) put(name, transformValue(get(name), regex, op.replace));
      return;
    }
  }
}

// ---- tree I/O ----

async function readTree(dir: string): Promise<Tree> {
  const tree: Tree = { data: new Map(), meta: new Map() };
  await walkTree(dir, [], {
    data: (segments, value) => tree.data.set(keyName(segments), { segments, value }),
    meta: (segments, metaName, value) => {
      const name = keyName(segments);
      const values = tree.meta.get(name) ?? new Map<string, unknown>();
      values.set(metaName, value);
      tree.meta.set(name, values);
    },
  });
  return tree;
}

/** Writes every file and fsyncs it and its directory: the links flip to this tree right after. */
async function writeTree(dir: string, tree: Tree, withMeta: boolean): Promise<void> {
  const dirs = new Set<string>([dir]);
  const write = async (path: string, value: unknown): Promise<void> => {
    const parent = join(path, '..');
    await mkdir(parent, { recursive: true });
    for (let up = parent; up.length > dir.length; up = join(up, '..')) dirs.add(up);
    const handle = await open(path, 'w', 0o644);
    try {
      await handle.writeFile(JSON.stringify(value));
      await handle.sync();
    } finally {
      await handle.close();
    }
  };
  await mkdir(dir, { recursive: true });
  for (const entry of tree.data.values()) await write(dataPath(dir, entry.segments), entry.value);
  for (const [name, values] of tree.meta) {
    for (const [metaName, value] of values) {
      if (withMeta || metaName === DELETE_MARKER) await write(metaPath(dir, parseKey(name), metaName), value);
    }
  }
  for (const path of dirs) await fsyncDirectory(path);
  await fsyncDirectory(join(dir, '..'));
}

async function listDirs(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((name) => !name.startsWith('.'));
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw error;
  }
}
