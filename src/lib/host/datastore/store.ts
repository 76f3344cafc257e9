// The filesystem datastore: Bottlerocket's on-disk layout, with atomic, durable, batched commits.
import { linkSync, mkdirSync, readdirSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../../core/errors.ts';
import { decodeSegment, encodeSegment, isSegmentPrefix, keyName } from './key.ts';
import { fsyncDirectory, writeFileAtomic } from '../../core/fs.ts';
import { randomAlnum, readVersionChain } from './layout.ts';
import { ReadWriteLock } from './lock.ts';
import { type FlatEntry, type JsonObject, unflatten } from './tree.ts';

export interface StoredEntry {
  segments: string[];
  value: unknown;
}

/** A transaction's pending changes: values to write and key paths to remove first. */
export interface PendingTx {
  values: Map<string, StoredEntry>;
  removals: Map<string, string[]>;
}

/** Suffix of the pending tombstone file that asks a commit to remove a key and everything below it. */
export const DELETE_MARKER = 'brl-delete';
const JOURNAL = '.commit-journal';

export class NothingToCommitError extends Error {
  override readonly name = 'NothingToCommitError';
  constructor() {
    super('Tried to commit with no pending changes');
  }
}

/** Data on disk that is not what the datastore writes (corrupt JSON, missing live tree). */
export class DatastoreIntegrityError extends Error {
  override readonly name = 'DatastoreIntegrityError';
}

interface Journal {
  next: string;
  old: string;
  transactions: string[];
}

interface QueuedCommit {
  tx: string;
  resolve: (keys: string[]) => void;
  reject: (error: unknown) => void;
}

export interface DatastoreOptions {
  /** Checks the whole committed `settings` document a commit would produce; throw to refuse it. */
  validateCommit?: (settings: JsonObject) => void;
}

export class Datastore {
  readonly lock = new ReadWriteLock();
  /** Bumped whenever committed data or metadata changes; response caches key on it. */
  generation = 0;
  validateCommit: ((settings: JsonObject) => void) | undefined;
  private live = new Map<string, StoredEntry>();
  private readonly meta = new Map<string, Map<string, unknown>>();
  private readonly queue: QueuedCommit[] = [];
  private readonly cleanups = new Set<Promise<void>>();
  private committing = false;

  readonly versionDir: string;
  readonly version: string;

  private constructor(versionDir: string, version: string, options: DatastoreOptions) {
    this.versionDir = versionDir;
    this.version = version;
    this.validateCommit = options.validateCommit;
  }

  /** Opens the datastore under `base` (the directory holding `current`), finishing any interrupted commit. */
  static async open(base: string, options: DatastoreOptions = {}): Promise<Datastore> {
    const chain = await readVersionChain(base);
    if (!chain) throw new DatastoreIntegrityError(`Datastore does not exist at ${base}, did storewolf run?`);
    const store = new Datastore(chain.versionDir, chain.version, options);
    await store.recover();
    await store.loadLive();
    return store;
  }

  get liveDir(): string {
    return join(this.versionDir, 'live');
  }

  pendingDir(tx: string): string {
    return join(this.versionDir, 'pending', encodeSegment(tx));
  }

  // ---- committed data (served from memory; the process is the only writer) ----

  liveEntries(): IterableIterator<[string, StoredEntry]> {
    return this.live.entries();
  }

  getLive(name: string): StoredEntry | undefined {
    return this.live.get(name);
  }

  /** Committed keys whose name starts with `prefix` (raw string comparison, as upstream). */
  liveByPrefix(prefix: string): StoredEntry[] {
    const found: StoredEntry[] = [];
    for (const [name, entry] of this.live) if (name.startsWith(prefix)) found.push(entry);
    return found;
  }

  /** The committed document below `segments` (`['settings']` → the settings object). */
  document(segments: readonly string[]): JsonObject {
    const below: StoredEntry[] = [];
    for (const entry of this.live.values()) if (isSegmentPrefix(segments, entry.segments)) below.push(entry);
    return unflatten(below, segments.length);
  }

  /** Most specific value of metadata `metaName` on `segments` or any of its ancestors. */
  inheritedMetadata(metaName: string, segments: readonly string[]): unknown {
    let found: unknown;
    for (let length = 1; length <= segments.length; length += 1) {
      const value = this.meta.get(keyName(segments.slice(0, length)))?.get(metaName);
      if (value !== undefined) found = value;
    }
    return found;
  }

  metadata(metaName: string): Map<string, unknown> {
    const found = new Map<string, unknown>();
    for (const [name, values] of this.meta) {
      const value = values.get(metaName);
      if (value !== undefined) found.set(name, value);
    }
    return found;
  }

  getMetadata(name: string, metaName: string): unknown {
    return this.meta.get(name)?.get(metaName);
  }

  // ---- writes straight to live (storewolf and the migrator, before the API serves) ----

  async writeLiveDirect(entries: readonly StoredEntry[]): Promise<void> {
    for (const entry of entries) {
      await writeFileAtomic(dataPath(this.liveDir, entry.segments), JSON.stringify(entry.value));
      this.live.set(keyName(entry.segments), { segments: [...entry.segments], value: entry.value });
    }
    this.generation += 1;
  }

  async writeMetadataDirect(segments: readonly string[], metaName: string, value: unknown): Promise<void> {
    await writeFileAtomic(metaPath(this.liveDir, segments, metaName), JSON.stringify(value));
    const name = keyName(segments);
    const values = this.meta.get(name) ?? new Map<string, unknown>();
    values.set(metaName, value);
    this.meta.set(name, values);
    this.generation += 1;
  }

  // ---- transactions ----

  async listTransactions(): Promise<string[]> {
    try {
      const names = await readdir(join(this.versionDir, 'pending'));
      return names.filter((name) => !name.startsWith('.')).map(decodeSegment);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return [];
      throw error;
    }
  }

  /**
   * Records changes in `pending/<tx>/`. A `null` value removes the pending values below that key
   * and leaves a tombstone so the commit removes the committed ones. Pending data is wiped at
   * every boot, so it is written atomically (rename) but not fsynced.
   */
  async writePending(tx: string, entries: readonly FlatEntry[]): Promise<void> {
    const dir = this.pendingDir(tx);
    for (const entry of entries) {
      const path = dataPath(dir, entry.segments);
      if (entry.value === null) {
        await rm(path, { recursive: true, force: true });
        await writeQuick(`${path}.${DELETE_MARKER}`, 'null');
      } else {
        await writeQuick(path, JSON.stringify(entry.value));
      }
    }
  }

  async readPending(tx: string): Promise<PendingTx> {
    const pending: PendingTx = { values: new Map(), removals: new Map() };
    await walkTree(this.pendingDir(tx), [], {
      data: (segments, value) => pending.values.set(keyName(segments), { segments, value }),
      meta: (segments, metaName) => {
        if (metaName === DELETE_MARKER) pending.removals.set(keyName(segments), segments);
      },
    });
    return pending;
  }

  /** Drops a transaction; returns the key names it held. */
  async discardPending(tx: string): Promise<string[]> {
    const pending = await this.readPending(tx);
    await rm(this.pendingDir(tx), { recursive: true, force: true });
    return [...pending.removals.keys(), ...pending.values.keys()];
  }

  /**
   * Commits `tx` and resolves with the committed key names (removed keys included). Commits that
   * arrive while one is being written are applied together, in arrival order, with one swap.
   */
  commit(tx: string): Promise<string[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ tx, resolve, reject });
      if (!this.committing) void this.runCommits();
    });
  }

  private async runCommits(): Promise<void> {
    this.committing = true;
    try {
      while (this.queue.length > 0) {
        await this.lock.write(async () => {
          const batch = this.queue.splice(0);
          try {
            await this.commitBatch(batch);
          } catch (error) {
            for (const request of batch) request.reject(error);
          }
        });
      }
    } finally {
      this.committing = false;
    }
  }

  private async commitBatch(batch: QueuedCommit[]): Promise<void> {
    let working = new Map(this.live);
    const accepted: { request: QueuedCommit; keys: string[] }[] = [];
    const consumed = new Set<string>();
    for (const request of batch) {
      if (consumed.has(request.tx)) {
        request.reject(new NothingToCommitError());
        continue;
      }
      const pending = await this.readPending(request.tx);
      const values = [...pending.values.values()].filter((entry) => entry.segments[0] === 'settings');
      const removals = [...pending.removals.values()].filter((segments) => segments[0] === 'settings');
      if (values.length === 0 && removals.length === 0) {
        request.reject(new NothingToCommitError());
        continue;
      }
      const next = new Map(working);
      const keys = new Set<string>();
      for (const prefix of removals) {
        let removedAny = false;
        for (const [name, entry] of next) {
          if (isSegmentPrefix(prefix, entry.segments)) {
            next.delete(name);
            keys.add(name);
            removedAny = true;
          }
        }
        if (!removedAny) keys.add(keyName(prefix));
      }
      for (const entry of values) {
        const name = keyName(entry.segments);
        next.set(name, entry);
        keys.add(name);
      }
      try {
        this.validateCommit?.(documentOf(next, 'settings'));
      } catch (error) {
        request.reject(error);
        continue;
      }
      working = next;
      consumed.add(request.tx);
      accepted.push({ request, keys: [...keys] });
    }
    if (accepted.length === 0) return;
    await this.swapLive(working, [...consumed]);
    this.live = working;
    this.generation += 1;
    for (const { request, keys } of accepted) request.resolve(keys);
  }

  /**
   * Builds `.live-next-*` as a hard-link copy of live plus the changes, makes it durable, journals
   * the swap, renames it into place and removes the committed transactions.
   */
  private async swapLive(next: Map<string, StoredEntry>, transactions: string[]): Promise<void> {
    const token = randomAlnum(12);
    const journal: Journal = { next: `.live-next-${token}`, old: `.live-old-${token}`, transactions };
    const nextDir = join(this.versionDir, journal.next);
    const dirs = linkCopy(this.liveDir, nextDir);
    for (const [name, entry] of this.live) {
      if (!next.has(name)) await removeDataFile(nextDir, entry.segments);
    }
    const written: string[] = [];
    for (const [name, entry] of next) {
      const current = this.live.get(name);
      const serialized = JSON.stringify(entry.value);
      if (current !== undefined && JSON.stringify(current.value) === serialized) continue;
      const path = dataPath(nextDir, entry.segments);
      await mkdirTracked(nextDir, entry.segments.slice(0, -1), dirs);
      // The copy is a hard link to live's file: replace it, never write through it.
      await unlink(path).catch(ignoreMissing);
      await writeFile(path, serialized, { flag: 'wx', mode: 0o644 });
      written.push(path);
    }
    // The journal is written beside the tree and only renamed into place once both are durable.
    // Concurrent fsyncs share journal commits and device flushes; every file and directory is still synced.
    const journalTemp = join(this.versionDir, `.commit-journal.${token}.tmp`);
    await writeFile(journalTemp, JSON.stringify(journal), { flag: 'wx', mode: 0o644 });
    await Promise.all([
      fsyncPath(journalTemp, 'r+'),
      ...written.map((path) => fsyncPath(path, 'r+')),
      ...dirs.map((dir) => fsyncPath(dir, 'r').catch(ignoreMissing)),
    ]);
    await rename(journalTemp, join(this.versionDir, JOURNAL));
    await fsyncDirectory(this.versionDir);
    await this.finishSwap(journal);
  }

  /** The journalled part of a commit; safe to repeat from any point after a crash. */
  private async finishSwap(journal: Journal): Promise<void> {
    const nextDir = join(this.versionDir, journal.next);
    const oldDir = join(this.versionDir, journal.old);
    if (await exists(nextDir)) {
      if (await exists(this.liveDir)) await rename(this.liveDir, oldDir);
      await rename(nextDir, this.liveDir);
      await fsyncDirectory(this.versionDir);
    }
    for (const tx of journal.transactions) await rm(this.pendingDir(tx), { recursive: true, force: true });
    await rm(join(this.versionDir, JOURNAL), { force: true });
    // The old tree is garbage from here on (start-up discards any left over), so callers need not wait for it.
    const removal = rm(oldDir, { recursive: true, force: true }).catch(() => undefined);
    this.cleanups.add(removal);
    void removal.finally(() => this.cleanups.delete(removal));
  }

  /** Resolves once commits and the removal of replaced live trees have finished. */
  async settle(): Promise<void> {
    await this.lock.write(async () => undefined);
    await Promise.all([...this.cleanups]);
  }

  /** Completes a journalled swap, or discards staging trees a crash left without a journal. */
  private async recover(): Promise<void> {
    let journal: Journal | undefined;
    try {
      journal = JSON.parse(await readFile(join(this.versionDir, JOURNAL), 'utf8')) as Journal;
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
    }
    if (journal) await this.finishSwap(journal);
    for (const name of await readdir(this.versionDir)) {
      if (name.startsWith('.live-next-') || name.startsWith('.live-old-') || name.endsWith('.tmp')) {
        await rm(join(this.versionDir, name), { recursive: true, force: true });
      }
    }
    if (!(await exists(this.liveDir))) {
      throw new DatastoreIntegrityError(`Datastore at ${this.versionDir} has no live/ directory`);
    }
  }

  private async loadLive(): Promise<void> {
    this.live.clear();
    this.meta.clear();
    await walkTree(this.liveDir, [], {
      data: (segments, value) => this.live.set(keyName(segments), { segments, value }),
      meta: (segments, metaName, value) => {
        const name = keyName(segments);
        const values = this.meta.get(name) ?? new Map<string, unknown>();
        values.set(metaName, value);
        this.meta.set(name, values);
      },
    });
  }
}

/** The nested document of the keys below `root` in a flat map. */
export function documentOf(entries: Map<string, StoredEntry>, root: string): JsonObject {
  const below: StoredEntry[] = [];
  for (const entry of entries.values()) if (entry.segments[0] === root) below.push(entry);
  return unflatten(below, 1);
}

export function dataPath(dir: string, segments: readonly string[]): string {
  return join(dir, ...segments.map(encodeSegment));
}

export function metaPath(dir: string, segments: readonly string[], metaName: string): string {
  const parents = segments.slice(0, -1).map(encodeSegment);
  return join(dir, ...parents, `${encodeSegment(segments.at(-1) as string)}.${encodeSegment(metaName)}`);
}

interface TreeVisitor {
  data: (segments: string[], value: unknown) => void;
  meta: (segments: string[], metaName: string, value: unknown) => void;
}

/** Reads one file per key; names with a literal `.` are metadata (`<segment>.<meta name>`); dot-files are temporaries. */
export async function walkTree(dir: string, segments: string[], visitor: TreeVisitor): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw error;
  }
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    const dot = entry.name.indexOf('.');
    if (entry.isDirectory()) {
      if (dot < 0) await walkTree(path, [...segments, decodeSegment(entry.name)], visitor);
      continue;
    }
    const value = parseStored(path, await readFile(path, 'utf8'));
    if (dot < 0) {
      visitor.data([...segments, decodeSegment(entry.name)], value);
    } else {
      const owner = [...segments, decodeSegment(entry.name.slice(0, dot))];
      visitor.meta(owner, decodeSegment(entry.name.slice(dot + 1)), value);
    }
  }
}

function parseStored(path: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new DatastoreIntegrityError(`Datastore file ${path} does not hold JSON`);
  }
}

/** Atomic for readers (rename), not durable: for pending data only. */
async function writeQuick(path: string, text: string): Promise<void> {
  const dir = join(path, '..');
  await mkdir(dir, { recursive: true });
  const temp = join(dir, `.${randomAlnum(10)}.tmp`);
  await writeFile(temp, text);
  await rename(temp, path);
}

/**
 * Mirrors live into `target` with hard links; returns every directory created. Synchronous on
 * purpose: about a hundred tiny metadata calls finish faster than the thread-pool round trips
 * they would otherwise each take, and the writer lock is held either way.
 */
function linkCopy(source: string, target: string): string[] {
  const created: string[] = [];
  const copy = (from: string, to: string): void => {
    mkdirSync(to);
    created.push(to);
    for (const entry of readdirSync(from, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      if (entry.isDirectory()) copy(join(from, entry.name), join(to, entry.name));
      else linkSync(join(from, entry.name), join(to, entry.name));
    }
  };
  copy(source, target);
  return created;
}

async function mkdirTracked(root: string, segments: readonly string[], created: string[]): Promise<void> {
  let dir = root;
  for (const segment of segments) {
    dir = join(dir, encodeSegment(segment));
    try {
      await mkdir(dir);
      created.push(dir);
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error;
    }
  }
}

/** Unlinks a data file and prunes directories it leaves empty (metadata files keep theirs). */
async function removeDataFile(root: string, segments: readonly string[]): Promise<void> {
  await unlink(dataPath(root, segments)).catch(ignoreMissing);
  for (let length = segments.length - 1; length > 0; length -= 1) {
    try {
      await rmdir(dataPath(root, segments.slice(0, length)));
    } catch {
      return;
    }
  }
}

async function fsyncPath(path: string, flags: 'r' | 'r+'): Promise<void> {
  const handle = await open(path, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function ignoreMissing(error: unknown): void {
  if (errnoCode(error) !== 'ENOENT') throw error;
}

async function exists(path: string): Promise<boolean> {
  try {
    await readdir(path);
    return true;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    throw error;
  }
}
