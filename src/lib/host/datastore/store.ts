// The filesystem datastore: Bottlerocket's on-disk layout, with atomic, durable, group commits through a log.
import { fdatasync, fdatasyncSync, writeSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { errnoCode } from '../../core/errors.ts';
import { decodeSegment, encodeSegment, isSegmentPrefix, keyName } from './key.ts';
import { fsyncDirectory, writeFileAtomic } from '../../core/fs.ts';
import { dataPath, DatastoreIntegrityError, metaPath, type StoredEntry, walkTree } from './files.ts';
import { randomAlnum, readVersionChain } from './layout.ts';
import { WriteLock } from './lock.ts';
import { addToPending, emptyPending, pendingKeyNames, type PendingTx, readPendingFiles, writePendingFiles } from './pending.ts';
import { type FlatEntry, type JsonObject, unflatten } from './tree.ts';

export { DatastoreIntegrityError } from './files.ts';
/** The write-ahead log beside live/ (a brl addition; live/ keeps upstream's one file per key). */
export const COMMIT_LOG = '.brl-commit-log';
const LOG = COMMIT_LOG;
/** Written by brl before the commit log: a swap of a hard-linked copy of live/, finished at open. */
const JOURNAL = '.commit-journal';
/** A consumed transaction renamed inside pending/ until its removal finishes. */
const COMMITTED_PREFIX = '.committed-';
/** Each log record: magic, payload length and CRC-32 of the payload (little endian), then the JSON payload. */
const LOG_MAGIC = 0x574c5242;
const LOG_HEADER_BYTES = 12;
const DEFAULT_CHECKPOINT_BYTES = 1024 * 1024;
/** Zeros written past the checkpoint bound, so the batch that crosses it still overwrites allocated blocks. */
const LOG_PREALLOC_SLACK_BYTES = 64 * 1024;
const DEFAULT_IDLE_CHECKPOINT_MS = 1000;
/** A transaction PATCHed this recently and not yet committed is a sibling that a batch waits for. */
const SIBLING_WINDOW_MS = 2;
/** The most a batch waits for its siblings' commits. */
const SIBLING_WAIT_MS = 1;
/**
 * A log flush that took less than this runs the next one on the event loop: waking a thread-pool
 * thread costs more than such a flush blocks (22 µs of the loop's time against 100–150 µs of
 * flush, with twice the CPU, measured on a 2-vCPU VM). A disk that turns slow blocks the API during
 * one flush; the flushes after it run on the thread pool until one is quick again.
 */
const FLUSH_ON_LOOP_BELOW_MS = 1;

export class NothingToCommitError extends Error {
  override readonly name = 'NothingToCommitError';
  constructor() {
    super('Tried to commit with no pending changes');
  }
}

/** A key that would be both a value and the parent of other keys (`a` and `a.b`). */
export class KeyNestingError extends Error {
  override readonly name = 'KeyNestingError';
}

/** An earlier log flush or checkpoint failed; the process must restart and replay the log. */
export class DatastoreFailedError extends Error {
  override readonly name = 'DatastoreFailedError';
  constructor(cause: unknown) {
    super(`The datastore stopped taking commits after a failed write: ${(cause as Error).message ?? String(cause)}`, { cause });
  }
}

/** One log record: the whole values of the keys a batch set and the keys it removed. */
interface LogRecord {
  seq: number;
  set: [string[], unknown][];
  del: string[][];
}

interface StagedBatch {
  working: StagedView;
  accepted: { request: QueuedCommit; keys: string[] }[];
  record: LogRecord;
  /** Consumed transactions that have a pending/<tx>/ tree to remove before the record is written. */
  fromDisk: string[];
}

export interface DatastoreStats {
  /** Commits acknowledged. */
  commits: number;
  /** Log records written, one per batch, each followed by one fdatasync. */
  logWrites: number;
  /** Every fsync and fdatasync the datastore issued (log, checkpoints, the log's creation). */
  fsyncs: number;
  checkpoints: number;
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
  /**
   * Checks what a commit would leave in the `settings` groups it touches (the committed document
   * with only those groups); throw to refuse it.
   */
  validateCommit?: (settings: JsonObject) => void;
  /** The log is checkpointed into live/ once it holds this many bytes (default 1 MiB). */
  checkpointBytes?: number;
  /** … or after this long without a commit (default 1000 ms). */
  idleCheckpointMs?: number;
  /** A log flush quicker than this runs the next one on the event loop (default FLUSH_ON_LOOP_BELOW_MS). */
  flushOnLoopBelowMs?: number;
}

export class Datastore {
  private readonly lock = new WriteLock();
  /** Bumped whenever committed data or metadata changes; response caches key on it. */
  generation = 0;
  validateCommit: ((settings: JsonObject) => void) | undefined;
  /** Acknowledged data: live/ plus the log. */
  private live = new Map<string, StoredEntry>();
  private readonly meta = new Map<string, Map<string, unknown>>();
  private readonly pending = new Map<string, PendingTx>();
  /** Transactions that also have a pending/<tx>/ tree, written before this store opened. */
  private readonly pendingOnDisk = new Set<string>();
  /** Transactions in pending/ whose files could not be read, with the error naming the file. */
  private readonly unreadablePending = new Map<string, DatastoreIntegrityError>();
  private readonly queue: QueuedCommit[] = [];
  /** Open transactions by the time of their last change (performance.now()), until committed or discarded. */
  private readonly recentlyChanged = new Map<string, number>();
  /** Ends the wait of a batch for its siblings, while one waits. */
  private siblingsDone: (() => void) | undefined;
  private readonly cleanups = new Set<Promise<void>>();
  /** Keys the log changed since the last checkpoint (name → segments). */
  private dirty = new Map<string, string[]>();
  private log: FileHandle | undefined;
  /** Bytes of records in the log; the rest of the file is zeros. */
  private logBytes = 0;
  /** The log file is not `logPreallocBytes` of zeros past its records (a torn tail, an older brl's log): rewrite it at the next checkpoint. */
  private logNeedsReset = false;
  private seq = 0;
  /** The last log flush was quick: flush the next one on the event loop. */
  private flushOnLoop = true;
  private writing = false;
  private draining: Promise<void> = Promise.resolve();
  private checkpointWanted = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private failure: unknown;
  private readonly counters: DatastoreStats = { commits: 0, logWrites: 0, fsyncs: 0, checkpoints: 0 };
  private readonly checkpointBytes: number;
  private readonly logPreallocBytes: number;
  private readonly idleCheckpointMs: number;
  private readonly flushOnLoopBelowMs: number;

  readonly versionDir: string;
  readonly version: string;

  private constructor(versionDir: string, version: string, options: DatastoreOptions) {
    this.versionDir = versionDir;
    this.version = version;
    this.validateCommit = options.validateCommit;
    this.checkpointBytes = options.checkpointBytes ?? DEFAULT_CHECKPOINT_BYTES;
    this.logPreallocBytes = this.checkpointBytes + LOG_PREALLOC_SLACK_BYTES;
    this.idleCheckpointMs = options.idleCheckpointMs ?? DEFAULT_IDLE_CHECKPOINT_MS;
    this.flushOnLoopBelowMs = options.flushOnLoopBelowMs ?? FLUSH_ON_LOOP_BELOW_MS;
  }

  /**
   * Opens the datastore under `base` (the directory holding `current`): loads live/, replays the
   * commit log over it and checkpoints, so live/ holds every acknowledged commit afterwards.
   * Anything that reads live/ from disk opens the datastore first.
   */
  static async open(base: string, options: DatastoreOptions = {}): Promise<Datastore> {
    const chain = await readVersionChain(base);
    if (!chain) throw new DatastoreIntegrityError(`Datastore does not exist at ${base}, did storewolf run?`);
    const store = new Datastore(chain.versionDir, chain.version, options);
    await store.recoverSwap();
    await store.loadPending();
    await store.loadLive();
    await store.replayLog();
    await store.checkpoint();
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
    // A log record replayed later must not overwrite what is written here.
    await this.settle();
    for (const entry of entries) {
      await writeFileAtomic(dataPath(this.liveDir, entry.segments), JSON.stringify(entry.value));
      this.live.set(keyName(entry.segments), { segments: [...entry.segments], value: entry.value });
    }
    this.generation += 1;
  }

  async writeMetadataDirect(segments: readonly string[], metaName: string, value: unknown): Promise<void> {
    await this.settle();
    await writeFileAtomic(metaPath(this.liveDir, segments, metaName), JSON.stringify(value));
    const name = keyName(segments);
    const values = this.meta.get(name) ?? new Map<string, unknown>();
    values.set(metaName, value);
    this.meta.set(name, values);
    this.generation += 1;
  }

  // ---- transactions ----
  // The apiserver's pending transactions live in memory (`pending`): a PATCH and a commit touch no
  // file before the commit's log record. Transactions another process wrote into pending/<tx>/
  // before the store opened (storewolf's launch transaction) are read at open and stay on disk,
  // kept in step by later PATCHes, until they are committed or discarded.

  listTransactions(): string[] {
    return [...this.pending.keys(), ...this.unreadablePending.keys()];
  }

  /**
   * Adds changes to `tx`, creating it. A `null` value drops what the transaction holds at and
   * below that key and leaves a tombstone, so the commit removes the committed ones. Serialized
   * with commits by the writer lock; a transaction held only in memory, with the lock free, is
   * changed at once (every PATCH of the API), without waiting a turn for the lock.
   */
  writePending(tx: string, entries: readonly FlatEntry[]): Promise<void> | undefined {
    if (this.lock.free && !this.pendingOnDisk.has(tx)) {
      this.addPending(tx, entries);
      return undefined;
    }
    return this.lock.write(async () => {
      this.addPending(tx, entries);
      if (this.pendingOnDisk.has(tx) && entries.length > 0) await writePendingFiles(this.pendingDir(tx), entries);
    });
  }

  private addPending(tx: string, entries: readonly FlatEntry[]): void {
    this.throwIfUnreadable(tx);
    if (entries.length === 0) return;
    let pending = this.pending.get(tx);
    if (pending === undefined) {
      pending = emptyPending();
      this.pending.set(tx, pending);
    }
    addToPending(pending, entries);
    this.recentlyChanged.set(tx, performance.now());
  }

  readPending(tx: string): PendingTx {
    this.throwIfUnreadable(tx);
    return this.pending.get(tx) ?? emptyPending();
  }

  /** Drops a transaction (under the writer lock); returns the key names it held. */
  discardPending(tx: string): Promise<string[]> {
    this.recentlyChanged.delete(tx);
    this.releaseIfNoSiblings();
    return this.lock.write(async () => {
      const pending = this.pending.get(tx);
      this.pending.delete(tx);
      if (this.pendingOnDisk.delete(tx) || this.unreadablePending.delete(tx)) {
        await rm(this.pendingDir(tx), { recursive: true, force: true });
      }
      return pending === undefined ? [] : pendingKeyNames(pending);
    });
  }

  private throwIfUnreadable(tx: string): void {
    const error = this.unreadablePending.get(tx);
    if (error !== undefined) throw error;
  }

  /**
   * Reads the transactions in pending/. One whose files are not JSON is kept out, with its error
   * reported for that transaction alone: a stray file must not keep the API from starting.
   */
  private async loadPending(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(join(this.versionDir, 'pending'));
    } catch (error) {
      ignoreMissing(error);
      return;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const tx = decodeSegment(name);
      try {
        this.pending.set(tx, await readPendingFiles(this.pendingDir(tx)));
        this.pendingOnDisk.add(tx);
      } catch (error) {
        if (!(error instanceof DatastoreIntegrityError)) throw error;
        this.unreadablePending.set(tx, error);
      }
    }
  }

  /**
   * Commits `tx` and resolves with the committed key names (removed keys included) once the
   * commit is on disk. Commits that arrive while the log is being flushed are validated in
   * arrival order and written together behind that flush, as one log record with one fdatasync.
   * A batch about to be written first waits for its siblings, transactions changed in the last
   * SIBLING_WINDOW_MS and not yet committed, whose commits are on their way (at most
   * SIBLING_WAIT_MS), as PostgreSQL's commit_delay waits only when commit_siblings are active,
   * and is cut at the end of the event-loop turn: a lone commit is written in the turn it arrives.
   */
  commit(tx: string): Promise<string[]> {
    this.recentlyChanged.delete(tx);
    const done = new Promise<string[]>((resolve, reject) => {
      this.queue.push({ tx, resolve, reject });
    });
    this.kick();
    this.releaseIfNoSiblings();
    return done;
  }

  /** Whether a transaction changed in the last SIBLING_WINDOW_MS is still open; older ones are forgotten. */
  private hasSiblings(): boolean {
    if (this.recentlyChanged.size === 0) return false;
    const since = performance.now() - SIBLING_WINDOW_MS;
    for (const [tx, changed] of this.recentlyChanged) {
      if (changed >= since) return true;
      this.recentlyChanged.delete(tx);
    }
    return false;
  }

  private releaseIfNoSiblings(): void {
    if (this.siblingsDone !== undefined && !this.hasSiblings()) this.siblingsDone();
  }

  /** Resolves once no sibling is open, or after SIBLING_WAIT_MS. */
  private waitForSiblings(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.siblingsDone?.(), SIBLING_WAIT_MS);
      this.siblingsDone = () => {
        clearTimeout(timer);
        this.siblingsDone = undefined;
        resolve();
      };
    });
  }

  /** Counters of the commit path: commits acknowledged, log records flushed, fsync/fdatasync calls, checkpoints. */
  get stats(): DatastoreStats {
    return { ...this.counters };
  }

  /** Resolves once queued commits are on disk, the log is checkpointed into live/ and old trees are removed. */
  async settle(): Promise<void> {
    this.checkpointWanted = true;
    this.kick();
    await this.draining;
    await Promise.all([...this.cleanups]);
    if (this.failure !== undefined) throw this.failure;
  }

  /** Starts the writer unless it runs; it works until the queue is empty, so every commit is picked up. */
  private kick(): void {
    if (this.writing) return;
    this.writing = true;
    this.draining = this.drain();
  }

  private async drain(): Promise<void> {
    try {
      for (;;) {
        if (this.queue.length > 0) {
          if (!this.checkpointWanted && this.hasSiblings()) await this.waitForSiblings();
          // Cut at the end of this event-loop turn: commits already received from other connections join the batch.
          await endOfTurn();
          await this.commitBatch(this.queue.splice(0));
        } else if (this.failure === undefined && (this.checkpointWanted || this.logBytes >= this.checkpointBytes)) {
          this.checkpointWanted = false;
          await this.checkpoint().catch((error: unknown) => {
            this.failure = error;
          });
        } else {
          // Synchronous from the empty-queue check to here: a commit queued from now on starts a new writer.
          break;
        }
      }
    } finally {
      this.writing = false;
    }
    this.armIdleCheckpoint();
  }

  /** Folds the log into live/ once no commit has come for a while, so live/ is current for anyone reading it. */
  private armIdleCheckpoint(): void {
    if (this.logBytes === 0 || this.failure !== undefined) {
      if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
      return;
    }
    // Re-armed after every batch: moving the running timer costs less than replacing it.
    if (this.idleTimer !== undefined) {
      this.idleTimer.refresh();
      return;
    }
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      this.checkpointWanted = true;
      this.kick();
    }, this.idleCheckpointMs);
    this.idleTimer.unref();
  }

  private async commitBatch(batch: QueuedCommit[]): Promise<void> {
    if (this.failure !== undefined) {
      for (const request of batch) request.reject(new DatastoreFailedError(this.failure));
      return;
    }
    let staged: StagedBatch | undefined;
    try {
      // Staging is synchronous: it waits only while a PATCH or discard holds the lock across file writes.
      staged = this.lock.free ? this.stageBatch(batch) : await this.lock.write(async () => this.stageBatch(batch));
      if (staged !== undefined && staged.fromDisk.length > 0) await this.lock.write(() => this.dropPendingFiles(staged!.fromDisk));
    } catch (error) {
      for (const request of batch) request.reject(error);
      return;
    }
    if (staged === undefined) return;
    const { working, accepted, record } = staged;
    try {
      await this.appendLog(record);
    } catch (error) {
      // After a failed flush the page cache no longer says what is on disk: refuse every later commit.
      this.failure = error;
      for (const { request } of accepted) request.reject(error);
      return;
    }
    working.applyTo(this.live);
    this.generation += 1;
    for (const segments of record.del) this.dirty.set(keyName(segments), segments);
    for (const [segments] of record.set) this.dirty.set(keyName(segments), segments);
    this.counters.commits += accepted.length;
    for (const { request, keys } of accepted) request.resolve(keys);
  }

  /**
   * With the writer lock free: validates each transaction over the result of the ones before it
   * and takes the accepted ones out of the pending transactions. Those that came from pending/ on
   * disk are named in `fromDisk`, to be renamed away durably before the log record, so a restart
   * cannot commit them twice (a crash before the record is on disk loses them, but none of them
   * was acknowledged).
   */
  private stageBatch(batch: QueuedCommit[]): StagedBatch | undefined {
    const working = new StagedView(this.live);
    const accepted: { request: QueuedCommit; keys: string[] }[] = [];
    const consumed = new Set<string>();
    const changed = new Map<string, string[]>();
    for (const request of batch) {
      const unreadable = this.unreadablePending.get(request.tx);
      if (unreadable !== undefined) {
        request.reject(unreadable);
        continue;
      }
      const pending = consumed.has(request.tx) ? undefined : this.pending.get(request.tx);
      const values = pending === undefined ? [] : [...pending.values.values()].filter((entry) => entry.segments[0] === 'settings');
      const removals = pending === undefined ? [] : [...pending.removals.values()].filter((segments) => segments[0] === 'settings');
      if (values.length === 0 && removals.length === 0) {
        request.reject(new NothingToCommitError());
        continue;
      }
      // Applied to the view in place; a refused transaction's changes are taken back.
      const mark = working.mark();
      const keys = new Map<string, string[]>();
      for (const prefix of removals) {
        const below: StoredEntry[] = [];
        working.forEach((entry) => {
          if (isSegmentPrefix(prefix, entry.segments)) below.push(entry);
        });
        for (const entry of below) {
          const name = keyName(entry.segments);
          working.put(name, null);
          keys.set(name, entry.segments);
        }
        if (below.length === 0) keys.set(keyName(prefix), prefix);
      }
      // Keys that held a value before this transaction have nothing below them (no key is both), so
      // only new ones need the search for keys below.
      const added: (readonly string[])[] = [];
      for (const entry of values) {
        const name = keyName(entry.segments);
        if (!working.has(name)) added.push(entry.segments);
        working.put(name, entry);
        keys.set(name, entry.segments);
      }
      try {
        for (const entry of values) checkNoParentValue(working, entry.segments);
        for (const segments of added) checkNothingBelow(working, segments);
        if (this.validateCommit !== undefined) this.validateCommit(settingsTouched(working, keys.values()));
      } catch (error) {
        working.rollBack(mark);
        request.reject(error);
        continue;
      }
      consumed.add(request.tx);
      for (const [name, segments] of keys) changed.set(name, segments);
      accepted.push({ request, keys: [...keys.keys()] });
    }
    if (accepted.length === 0) return undefined;
    const record: LogRecord = { seq: this.seq + 1, set: [], del: [] };
    for (const [name, segments] of changed) {
      const entry = working.get(name);
      if (entry !== undefined) record.set.push([entry.segments, entry.value]);
      else if (this.live.has(name)) record.del.push(segments);
    }
    const fromDisk = [...consumed].filter((tx) => this.pendingOnDisk.has(tx));
    for (const tx of consumed) {
      this.pending.delete(tx);
      this.pendingOnDisk.delete(tx);
    }
    return { working, accepted, record, fromDisk };
  }

  /** Renames committed transactions' pending/<tx>/ trees out of the way, makes that durable, and removes them in the background. */
  private async dropPendingFiles(transactions: readonly string[]): Promise<void> {
    if (transactions.length === 0) return;
    const pendingRoot = join(this.versionDir, 'pending');
    const trash: string[] = [];
    for (const tx of transactions) {
      const path = join(pendingRoot, `${COMMITTED_PREFIX}${randomAlnum(12)}`);
      try {
        await rename(this.pendingDir(tx), path);
        trash.push(path);
      } catch (error) {
        ignoreMissing(error);
      }
    }
    await this.fsyncPath(pendingRoot, 'r');
    for (const path of trash) this.removeInBackground(path);
  }

  private removeInBackground(path: string): void {
    const removal = rm(path, { recursive: true, force: true }).catch(() => undefined);
    this.cleanups.add(removal);
    void removal.finally(() => this.cleanups.delete(removal));
  }

  /**
   * Writes one framed record over the zeros after the last one and flushes it; the log is opened
   * on the first commit after a checkpoint. The file keeps its size and its blocks, so the
   * fdatasync flushes data only and does not wait for a file-system journal commit.
   */
  private async appendLog(record: LogRecord): Promise<void> {
    const frame = encodeRecord(record);
    if (this.log === undefined) this.log = await open(this.logPath, 'r+');
    // A write to the page cache takes microseconds: made here, it spares the commit a round trip
    // through the thread pool, so the fdatasync is the one wait of a batch.
    for (let written = 0; written < frame.length; ) {
      written += writeSync(this.log.fd, frame, written, frame.length - written, this.logBytes + written);
    }
    this.logBytes += frame.length;
    this.counters.fsyncs += 1;
    const started = performance.now();
    if (this.flushOnLoop) fdatasyncSync(this.log.fd);
    else await datasync(this.log.fd);
    this.flushOnLoop = performance.now() - started < this.flushOnLoopBelowMs;
    this.counters.logWrites += 1;
    this.seq = record.seq;
  }

  get logPath(): string {
    return join(this.versionDir, LOG);
  }

  /**
   * Writes every key changed since the last checkpoint into live/ (temp file, fsync, rename;
   * removed keys unlinked), fsyncs the directories those names changed in, and only then empties
   * the log: truncated, refilled with zeros, fsynced. A crash at any point replays the log over
   * live/ again, which gives the same tree; a log cut short or partly zeroed holds no record or
   * records live/ already has.
   */
  private async checkpoint(): Promise<void> {
    if (this.dirty.size === 0 && this.logBytes === 0 && !this.logNeedsReset) return;
    const dirty = this.dirty;
    this.dirty = new Map();
    const dirs = new Set<string>();
    for (const [name, segments] of dirty) {
      if (!this.live.has(name)) await removeDataFile(this.liveDir, segments, dirs);
    }
    const writes: Promise<void>[] = [];
    for (const name of dirty.keys()) {
      const entry = this.live.get(name);
      if (entry !== undefined) writes.push(this.writeLiveFile(entry, dirs));
    }
    await Promise.all(writes);
    await Promise.all([...dirs].map((dir) => this.fsyncPath(dir, 'r')));
    const log = this.log ?? (await open(this.logPath, 'r+'));
    this.log = undefined;
    try {
      await log.truncate(0);
      await log.write(Buffer.alloc(this.logPreallocBytes), 0, this.logPreallocBytes, 0);
      this.counters.fsyncs += 1;
      await log.sync();
    } finally {
      await log.close();
    }
    this.logBytes = 0;
    this.logNeedsReset = false;
    this.counters.checkpoints += 1;
  }

  private async writeLiveFile(entry: StoredEntry, dirs: Set<string>): Promise<void> {
    await mkdirTracked(this.liveDir, entry.segments.slice(0, -1), dirs);
    const path = dataPath(this.liveDir, entry.segments);
    const parent = join(path, '..');
    const temp = join(parent, `.${randomAlnum(10)}.tmp`);
    const handle = await open(temp, 'wx', 0o644);
    try {
      await handle.writeFile(JSON.stringify(entry.value));
      this.counters.fsyncs += 1;
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    dirs.add(parent);
  }

  private async fsyncPath(path: string, flags: 'r' | 'r+'): Promise<void> {
    this.counters.fsyncs += 1;
    await fsyncPath(path, flags);
  }

  /**
   * Replays the log over the tree loaded from live/: records in order, each one whole values, so
   * replaying a record live/ already holds changes nothing. A torn last record was never
   * acknowledged and is dropped; damage before the end is refused with the log's path.
   */
  private async replayLog(): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.logPath);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
      // Created once, durably, so a commit's fdatasync never has to make the name itself durable.
      await writeFile(this.logPath, '', { flag: 'wx', mode: 0o644 });
      await this.fsyncPath(this.versionDir, 'r');
      this.logNeedsReset = true;
      return;
    }
    const { records, end } = decodeLog(bytes, this.logPath);
    this.logBytes = end;
    this.logNeedsReset = bytes.length !== this.logPreallocBytes || !isZeros(bytes.subarray(end));
    let previous: number | undefined;
    for (const { record, offset } of records) {
      if (previous !== undefined && record.seq !== previous + 1) {
        throw new DatastoreIntegrityError(`Datastore commit log ${this.logPath} skips from record ${previous} to ${record.seq} at byte ${offset}; the datastore was left as it was`);
      }
      previous = record.seq;
      for (const segments of record.del) {
        this.live.delete(keyName(segments));
        this.dirty.set(keyName(segments), segments);
      }
      for (const [segments, value] of record.set) {
        this.live.set(keyName(segments), { segments, value });
        this.dirty.set(keyName(segments), segments);
      }
      this.seq = record.seq;
    }
  }

  /** Completes a swap journalled by brl before the commit log, or discards staging trees a crash left without a journal. */
  private async recoverSwap(): Promise<void> {
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
    let pendingNames: string[] = [];
    try {
      pendingNames = await readdir(join(this.versionDir, 'pending'));
    } catch (error) {
      ignoreMissing(error);
    }
    for (const name of pendingNames) {
      if (name.startsWith(COMMITTED_PREFIX)) this.removeInBackground(join(this.versionDir, 'pending', name));
    }
  }

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
    await rm(oldDir, { recursive: true, force: true });
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

/**
 * The settings groups (`settings.<group>`) that `changed` keys fall in, as the commit would leave
 * them: the document a commit is validated over. Groups a commit does not touch were validated
 * when they were committed; a change to `settings` itself takes the whole document.
 */
function settingsTouched(entries: StagedView, changed: Iterable<readonly string[]>): JsonObject {
  const groups = new Set<string>();
  let whole = false;
  for (const segments of changed) {
    if (segments.length < 2) whole = true;
    else groups.add(segments[1] as string);
  }
  const below: StoredEntry[] = [];
  entries.forEach((entry) => {
    if (entry.segments[0] === 'settings' && (whole || groups.has(entry.segments[1] as string))) below.push(entry);
  });
  return unflatten(below, 1);
}

/**
 * The committed entries with a batch's changes over them, so staging a batch does not copy the
 * committed map; the changes are applied to it once the batch's record is on disk.
 */
class StagedView {
  /** Changed keys: the new entry, or null where the batch removes the key. */
  private readonly changes = new Map<string, StoredEntry | null>();
  /** What each change replaced, in order, so a refused transaction's changes can be taken back. */
  private readonly undo: [string, StoredEntry | null | undefined][] = [];
  private readonly base: ReadonlyMap<string, StoredEntry>;

  constructor(base: ReadonlyMap<string, StoredEntry>) {
    this.base = base;
  }

  has(name: string): boolean {
    const change = this.changes.get(name);
    return change === undefined ? this.base.has(name) : change !== null;
  }

  get(name: string): StoredEntry | undefined {
    const change = this.changes.get(name);
    return change === undefined ? this.base.get(name) : (change ?? undefined);
  }

  forEach(visit: (entry: StoredEntry) => void): void {
    this.base.forEach((entry, name) => {
      if (!this.changes.has(name)) visit(entry);
    });
    this.changes.forEach((entry) => {
      if (entry !== null) visit(entry);
    });
  }

  put(name: string, entry: StoredEntry | null): void {
    this.undo.push([name, this.changes.get(name)]);
    this.changes.set(name, entry);
  }

  mark(): number {
    return this.undo.length;
  }

  rollBack(mark: number): void {
    while (this.undo.length > mark) {
      const [name, before] = this.undo.pop() as [string, StoredEntry | null | undefined];
      if (before === undefined) this.changes.delete(name);
      else this.changes.set(name, before);
    }
  }

  applyTo(target: Map<string, StoredEntry>): void {
    this.changes.forEach((entry, name) => {
      if (entry === null) target.delete(name);
      else target.set(name, entry);
    });
  }
}

/** Creates the directories of `segments` below `root`; a created directory and its parent go into `dirs` to be fsynced. */
async function mkdirTracked(root: string, segments: readonly string[], dirs: Set<string>): Promise<void> {
  let dir = root;
  for (const segment of segments) {
    const parent = dir;
    dir = join(dir, encodeSegment(segment));
    try {
      await mkdir(dir);
      dirs.add(parent);
      dirs.add(dir);
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error;
    }
  }
}

/** Unlinks a data file and prunes directories it leaves empty (metadata files keep theirs); changed directories go into `dirs`. */
async function removeDataFile(root: string, segments: readonly string[], dirs: Set<string>): Promise<void> {
  const path = dataPath(root, segments);
  try {
    await unlink(path);
  } catch (error) {
    ignoreMissing(error);
    return;
  }
  dirs.add(join(path, '..'));
  for (let length = segments.length - 1; length > 0; length -= 1) {
    const dir = dataPath(root, segments.slice(0, length));
    try {
      await rmdir(dir);
    } catch {
      return;
    }
    dirs.delete(dir);
    dirs.add(join(dir, '..'));
  }
}

/** A key may not be set where another key is its parent or its child: live/ could not hold both. */
function checkNoParentValue(entries: StagedView, segments: readonly string[]): void {
  for (let length = 1; length < segments.length; length += 1) {
    const parent = keyName(segments.slice(0, length));
    if (entries.has(parent)) throw new KeyNestingError(`Cannot set ${keyName(segments)}: ${parent} holds a value`);
  }
}

function checkNothingBelow(entries: StagedView, segments: readonly string[]): void {
  let below: StoredEntry | undefined;
  entries.forEach((entry) => {
    if (below === undefined && entry.segments.length > segments.length && isSegmentPrefix(segments, entry.segments)) below = entry;
  });
  if (below !== undefined) {
    throw new KeyNestingError(`Cannot set ${keyName(segments)} to a value: ${keyName(below.segments)} is below it`);
  }
}

function encodeRecord(record: LogRecord): Buffer {
  const payload = Buffer.from(JSON.stringify(record));
  const frame = Buffer.allocUnsafe(LOG_HEADER_BYTES + payload.length);
  frame.writeUInt32LE(LOG_MAGIC, 0);
  frame.writeUInt32LE(payload.length, 4);
  frame.writeUInt32LE(crc32(payload), 8);
  payload.copy(frame, LOG_HEADER_BYTES);
  return frame;
}

/**
 * The whole records of a log and where they end. A record is written only after the one before
 * it is flushed, so a damaged record with a good one anywhere after it had been flushed: that is
 * corruption. With no good record after it, it is the last write, torn by a crash before its
 * flush finished (never acknowledged), and ends the log.
 */
function decodeLog(bytes: Buffer, path: string): { records: { record: LogRecord; offset: number }[]; end: number } {
  const records: { record: LogRecord; offset: number }[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const read = readRecord(bytes, offset);
    if ('record' in read) {
      records.push({ record: read.record, offset });
      offset = read.end;
      continue;
    }
    if (isZeros(bytes.subarray(offset)) || !hasRecordAfter(bytes, offset + 1)) break;
    throw new DatastoreIntegrityError(`Datastore commit log ${path} is damaged at byte ${offset} (${read.damage}); the datastore was left as it was`);
  }
  return { records, end: offset };
}

function readRecord(bytes: Buffer, offset: number): { record: LogRecord; end: number } | { damage: string } {
  if (bytes.length - offset < LOG_HEADER_BYTES || bytes.readUInt32LE(offset) !== LOG_MAGIC) return { damage: 'no record header' };
  const end = offset + LOG_HEADER_BYTES + bytes.readUInt32LE(offset + 4);
  if (end > bytes.length) return { damage: 'record runs past the end' };
  const payload = bytes.subarray(offset + LOG_HEADER_BYTES, end);
  if (crc32(payload) !== bytes.readUInt32LE(offset + 8)) return { damage: 'checksum mismatch' };
  let record: LogRecord;
  try {
    record = JSON.parse(payload.toString('utf8')) as LogRecord;
  } catch {
    return { damage: 'record is not JSON' };
  }
  if (!Number.isSafeInteger(record.seq) || !Array.isArray(record.set) || !Array.isArray(record.del)) return { damage: 'not a commit record' };
  return { record, end };
}

/** Whether a whole, checksummed record starts anywhere at or after `from`. */
function hasRecordAfter(bytes: Buffer, from: number): boolean {
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(LOG_MAGIC);
  for (let at = bytes.indexOf(magic, from); at >= 0; at = bytes.indexOf(magic, at + 1)) {
    if ('record' in readRecord(bytes, at)) return true;
  }
  return false;
}

function isZeros(bytes: Buffer): boolean {
  return bytes.every((byte) => byte === 0);
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

function endOfTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** `fdatasync` through the callback API: one thread-pool request, without FileHandle's promise bookkeeping. */
function datasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (error) => (error === null ? resolve() : reject(error))));
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
