// The migration cache: the signed metadata and migration targets updog keeps for the migrator, as
// a file TUF repository (tough's layout), written by updog and re-verified offline at boot.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import type { Metadata, MetaFile, Root, Snapshot, Targets, Timestamp } from '@tufjs/models';
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';
import { fsyncDirectory } from '../core/fs.ts';

/** Same limit as updog's online client: more root rotations than this is an attack, not a history. */
const MAX_ROOT_ROTATIONS = 1024;

export interface MigrationCachePaths {
  /** `N.root.json…`, `<v>.snapshot.json`, `<v>.targets.json`, `timestamp.json`. */
  metadataDir: string;
  /** `<sha256>.<name>` for each migration and `manifest.json`. */
  targetsDir: string;
  /** The root baked into the running image: the trust anchor for the offline check. */
  trustedRoot: string;
}

export function migrationCachePaths(hostRoot: string): MigrationCachePaths {
  return {
    metadataDir: join(hostRoot, 'var', 'cache', 'bottlerocket-metadata'),
    targetsDir: join(hostRoot, 'var', 'lib', 'bottlerocket-migrations'),
    trustedRoot: join(hostRoot, 'usr', 'share', 'updog', 'root.json'),
  };
}

export function cachedTargetFileName(name: string, sha256: string): string {
  if (name.includes('/') || name === '.' || name === '..') throw untrusted(`target name ${JSON.stringify(name)} cannot be cached as a file`);
  return `${sha256}.${name}`;
}

function untrusted(message: string, cause?: unknown): BrlError {
  return new BrlError(message, {
    hint: 'the cached migrations were altered, or are not signed by the keys this image trusts (/usr/share/updog/root.json); the datastore was left as it was',
    exitCode: ExitCode.verifyFailed,
    code: 'MIGRATION_CACHE_UNTRUSTED',
    ...(cause === undefined ? {} : { cause }),
  });
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

type Models = typeof import('@tufjs/models');
type RoleKind = 'root' | 'timestamp' | 'snapshot' | 'targets';

/**
 * @tufjs/models is CommonJS. Imported on demand from the host's esbuild ES-module chunks, its
 * namespace holds only `default` (module.exports); under Node's own loader the names are there too.
 */
async function loadModels(): Promise<Models> {
  const imported = (await import('@tufjs/models')) as Models & { default?: Models };
  return imported.Metadata === undefined && imported.default !== undefined ? imported.default : imported;
}

function parseMetadata<T extends Root | Timestamp | Snapshot | Targets>(models: Models, kind: RoleKind, bytes: Buffer, source: string): Metadata<T> {
  try {
    return models.Metadata.fromJSON(kind as Models['MetadataKind']['Root'], JSON.parse(bytes.toString('utf8'))) as unknown as Metadata<T>;
  } catch (error) {
    throw untrusted(`${source} is not valid ${kind} metadata: ${(error as Error).message}`, error);
  }
}

function verifySigned(signer: Metadata<Root>, role: string, metadata: Metadata<Root | Timestamp | Snapshot | Targets>, source: string): void {
  try {
    signer.verifyDelegate(role, metadata);
  } catch (error) {
    throw untrusted(`${source} is not signed by a threshold of the ${role} keys of root v${signer.signed.version}: ${(error as Error).message}`, error);
  }
}

function verifyPinned(bytes: Buffer, metadata: { signed: { version: number } }, pin: MetaFile, source: string, pinnedBy: string): void {
  try {
    pin.verify(bytes);
  } catch (error) {
    throw untrusted(`${source} does not match its length or hash in ${pinnedBy}: ${(error as Error).message}`, error);
  }
  if (metadata.signed.version !== pin.version) throw untrusted(`${source} is version ${metadata.signed.version}, ${pinnedBy} pins version ${pin.version}`);
}

/** A cache whose metadata chain verified from the trusted root: reads targets checked against it. */
export class VerifiedMigrationCache {
  readonly #paths: MigrationCachePaths;
  readonly #targets: Metadata<Targets>;

  constructor(paths: MigrationCachePaths, targets: Metadata<Targets>) {
    this.#paths = paths;
    this.#targets = targets;
  }

  /** The bytes of a cached target after checking its length and hashes against the signed targets metadata. */
  async readTarget(name: string): Promise<Buffer> {
    const info = this.#targets.signed.targets[name];
    if (!info) throw untrusted(`target ${name} is not listed in the cached targets metadata (${this.#paths.metadataDir})`);
    const sha256 = info.hashes.sha256;
    if (sha256 === undefined) throw untrusted(`target ${name} has no sha256 in the cached targets metadata`);
    const path = join(this.#paths.targetsDir, cachedTargetFileName(name, sha256));
    const bytes = await readOptional(path);
    if (!bytes) throw untrusted(`target ${name} is missing from the migration cache (${path})`);
    try {
      await info.verify(Readable.from([bytes]));
    } catch (error) {
      throw new BrlError(`cached migration target ${path} does not match the signed targets metadata: ${(error as Error).message}`, {
        hint: 'the file was altered after updog downloaded it; the datastore was left as it was',
        exitCode: ExitCode.verifyFailed,
        code: 'MIGRATION_TARGET_MISMATCH',
        cause: error,
      });
    }
    return bytes;
  }
}

/**
 * Verifies the cache offline as a TUF client would, trusting only `trustedRoot`: walk
 * `N.root.json` up from it (each signed by a threshold of the previous root and of itself), then
 * timestamp → snapshot → targets, each signed by the final root's keys and matching the version,
 * length and hashes the role above pins. Expiry is not checked (upstream's migrator does not
 * either): a host may reboot into its staged update long after the timestamp expired.
 * Returns undefined when nothing is cached (no `timestamp.json`, which updog writes last).
 */
export async function openMigrationCache(paths: MigrationCachePaths): Promise<VerifiedMigrationCache | undefined> {
  const timestampPath = join(paths.metadataDir, 'timestamp.json');
  const timestampBytes = await readOptional(timestampPath);
  if (!timestampBytes) return undefined;
  const trustedRootBytes = await readOptional(paths.trustedRoot);
  if (!trustedRootBytes) throw untrusted(`there is no trusted TUF root at ${paths.trustedRoot} to verify the cached migrations with`);
  // Loaded here: updog's and the boot's other paths never need it.
  const models = await loadModels();

  let root = parseMetadata<Root>(models, 'root', trustedRootBytes, paths.trustedRoot);
  verifySigned(root, 'root', root, paths.trustedRoot);
  for (let rotations = 0; ; rotations++) {
    const nextPath = join(paths.metadataDir, `${root.signed.version + 1}.root.json`);
    const nextBytes = await readOptional(nextPath);
    if (!nextBytes) break;
    if (rotations === MAX_ROOT_ROTATIONS) throw untrusted(`${paths.metadataDir} holds more than ${MAX_ROOT_ROTATIONS} root rotations`);
    const next = parseMetadata<Root>(models, 'root', nextBytes, nextPath);
    if (next.signed.version !== root.signed.version + 1) throw untrusted(`${nextPath} is version ${next.signed.version}`);
    verifySigned(root, 'root', next, nextPath);
    verifySigned(next, 'root', next, nextPath);
    root = next;
  }

  const timestamp = parseMetadata<Timestamp>(models, 'timestamp', timestampBytes, timestampPath);
  verifySigned(root, 'timestamp', timestamp, timestampPath);

  const snapshotPin = timestamp.signed.snapshotMeta;
  const snapshotPath = join(paths.metadataDir, `${snapshotPin.version}.snapshot.json`);
  const snapshotBytes = await readOptional(snapshotPath);
  if (!snapshotBytes) throw untrusted(`${snapshotPath} is missing from the migration cache`);
  const snapshot = parseMetadata<Snapshot>(models, 'snapshot', snapshotBytes, snapshotPath);
  verifySigned(root, 'snapshot', snapshot, snapshotPath);
  verifyPinned(snapshotBytes, snapshot, snapshotPin, snapshotPath, 'timestamp.json');

  const targetsPin = snapshot.signed.meta['targets.json'];
  if (!targetsPin) throw untrusted(`${snapshotPath} does not list targets.json`);
  const targetsPath = join(paths.metadataDir, `${targetsPin.version}.targets.json`);
  const targetsBytes = await readOptional(targetsPath);
  if (!targetsBytes) throw untrusted(`${targetsPath} is missing from the migration cache`);
  const targets = parseMetadata<Targets>(models, 'targets', targetsBytes, targetsPath);
  verifySigned(root, 'targets', targets, targetsPath);
  verifyPinned(targetsBytes, targets, targetsPin, targetsPath, snapshotPath);
  return new VerifiedMigrationCache(paths, targets);
}

/** The signed metadata updog caches: the root chain from the host's baked root, and the top-level roles. */
export interface MigrationCacheMetadata {
  /** `N.root.json` bytes, consecutive versions starting at the baked root's. */
  roots: Buffer[];
  timestamp: Buffer;
  snapshot: Buffer;
  targets: Buffer;
}

function versionOf(document: Buffer): number {
  return (JSON.parse(document.toString('utf8')) as { signed: { version: number } }).signed.version;
}

async function writeSynced(path: string, data: Uint8Array): Promise<void> {
  const handle = await open(path, 'wx', 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}


/** A sibling of `dir` that renames onto it (same filesystem), hidden from tools listing the parent. */
function siblingPath(dir: string, kind: 'new' | 'old', token: string): string {
  return join(dirname(dir), `.${basename(dir)}.${kind}-${token}`);
}

/** Removes staging and old directories a crash left beside the cache. */
async function removeLeftovers(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dirname(dir));
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw error;
  }
  const prefix = `.${basename(dir)}.`;
  for (const name of names.filter((entry) => entry.startsWith(prefix))) await rm(join(dirname(dir), name), { recursive: true, force: true });
}

/**
 * A new cache built beside the live one. `commit` swaps it in; until then the live cache (which
 * vouches for the update staged in the inactive set) stays as it was.
 */
export class StagedMigrationCache {
  readonly paths: MigrationCachePaths;
  readonly #live: MigrationCachePaths;
  readonly #token: string;

  private constructor(live: MigrationCachePaths, token: string) {
    this.#live = live;
    this.#token = token;
    this.paths = { ...live, metadataDir: siblingPath(live.metadataDir, 'new', token), targetsDir: siblingPath(live.targetsDir, 'new', token) };
  }

  static async create(live: MigrationCachePaths, metadata: MigrationCacheMetadata, targets: { name: string; sha256: string; bytes: Buffer }[]): Promise<StagedMigrationCache> {
    await removeLeftovers(live.metadataDir);
    await removeLeftovers(live.targetsDir);
    const staged = new StagedMigrationCache(live, randomBytes(6).toString('hex'));
    try {
      await mkdir(staged.paths.metadataDir, { recursive: true });
      await mkdir(staged.paths.targetsDir, { recursive: true });
      for (const root of metadata.roots) await writeSynced(join(staged.paths.metadataDir, `${versionOf(root)}.root.json`), root);
      await writeSynced(join(staged.paths.metadataDir, `${versionOf(metadata.snapshot)}.snapshot.json`), metadata.snapshot);
      await writeSynced(join(staged.paths.metadataDir, `${versionOf(metadata.targets)}.targets.json`), metadata.targets);
      await writeSynced(join(staged.paths.metadataDir, 'timestamp.json'), metadata.timestamp);
      for (const target of targets) await writeSynced(join(staged.paths.targetsDir, cachedTargetFileName(target.name, target.sha256)), target.bytes);
      await fsyncDirectory(staged.paths.metadataDir);
      await fsyncDirectory(staged.paths.targetsDir);
    } catch (error) {
      await staged.discard();
      throw error;
    }
    return staged;
  }

  /** Runs the migrator's own offline check over the staged cache and reads back every target. */
  async verify(targetNames: readonly string[]): Promise<void> {
    const cache = await openMigrationCache(this.paths);
    if (!cache) throw untrusted(`${this.paths.metadataDir} has no timestamp.json`);
    for (const name of targetNames) await cache.readTarget(name);
  }

  /**
   * Replaces the live cache. Metadata goes first: a crash between the two swaps leaves metadata
   * whose targets are missing, which the migrator refuses rather than skipping migrations.
   */
  async commit(): Promise<void> {
    for (const kind of ['metadataDir', 'targetsDir'] as const) {
      const live = this.#live[kind];
      const old = siblingPath(live, 'old', this.#token);
      try {
        await rename(live, old);
      } catch (error) {
        if (errnoCode(error) !== 'ENOENT') throw error;
      }
      await rename(this.paths[kind], live);
      await fsyncDirectory(dirname(live));
      await rm(old, { recursive: true, force: true });
    }
  }

  async discard(): Promise<void> {
    await rm(this.paths.metadataDir, { recursive: true, force: true });
    await rm(this.paths.targetsDir, { recursive: true, force: true });
  }
}
