// dm-verity (format 1, sha256, 4 KiB blocks) hash tree and superblock, byte-identical to `veritysetup format`.
import { hash } from 'node:crypto';
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, readvSync, statSync, writeSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { setTimeout } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { BrlError, ExitCode } from '../core/errors.ts';
import { workerExecArgv } from '../core/worker-argv.ts';

export const VERITY_BLOCK_SIZE = 4096;
const DIGEST_SIZE = 32;
const DIGESTS_PER_BLOCK = VERITY_BLOCK_SIZE / DIGEST_SIZE;
export const VERITY_SUPERBLOCK_SIZE = 512;
const SIGNATURE = 'verity\0\0';
/** Data blocks hashed per read; a multiple of DIGESTS_PER_BLOCK so each read fills whole hash blocks. */
const CHUNK_BLOCKS = 1024;
/** Below this many data blocks a worker costs more than it saves. */
const PARALLEL_THRESHOLD_BLOCKS = 8192;

export interface VerityOptions {
  /** 32 bytes (image-layout.md §11). */
  salt: Uint8Array;
  uuid: string;
  /** Pad the hash file with zeros to this size (the HASH partition); fails if the tree is larger. */
  hashFileSize?: number;
  /** Worker threads for level 0; default: available cores. */
  threads?: number;
}

export interface VerityResult {
  /** Lowercase hex. */
  rootHash: string;
  /** Lowercase hex. */
  salt: string;
  uuid: string;
  dataBlocks: number;
  /** Bytes of superblock plus tree; the hash file may be padded beyond it. */
  hashSize: number;
}

export interface VeritySuperblock {
  version: number;
  hashType: number;
  uuid: string;
  algorithm: string;
  dataBlockSize: number;
  hashBlockSize: number;
  dataBlocks: number;
  salt: Buffer;
}

/** Where each tree level lives, in hash blocks from the start of the hash device (block 0 = superblock). */
export interface VerityTreeLayout {
  /** levels[0] hashes data blocks; the last level is a single block (none when there is one data block). */
  levels: { firstBlock: number; blocks: number }[];
  /** Superblock plus tree, in hash blocks. */
  totalBlocks: number;
}

/** The tree shape cryptsetup computes: top level first, right after the superblock. */
export function verityTreeLayout(dataBlocks: number): VerityTreeLayout {
  if (!Number.isSafeInteger(dataBlocks) || dataBlocks < 1) throw new RangeError(`dm-verity needs at least one data block, got ${dataBlocks}`);
  let levelCount = 0;
  while (Math.floor((dataBlocks - 1) / DIGESTS_PER_BLOCK ** levelCount) > 0) levelCount++;
  const sizes = Array.from({ length: levelCount }, (_, level) => Math.ceil(dataBlocks / DIGESTS_PER_BLOCK ** (level + 1)));
  const levels = new Array<{ firstBlock: number; blocks: number }>(levelCount);
  let position = 1;
  for (let level = levelCount - 1; level >= 0; level--) {
    levels[level] = { firstBlock: position, blocks: sizes[level]! };
    position += sizes[level]!;
  }
  return { levels, totalBlocks: position };
}

export function serializeVeritySuperblock(options: { uuid: string; salt: Uint8Array; dataBlocks: number }): Buffer {
  if (options.salt.length > 256) throw new RangeError('dm-verity salt is at most 256 bytes');
  const block = Buffer.alloc(VERITY_SUPERBLOCK_SIZE);
  block.write(SIGNATURE, 0, 'latin1');
  block.writeUInt32LE(1, 8);
  block.writeUInt32LE(1, 12);
  Buffer.from(options.uuid.replaceAll('-', ''), 'hex').copy(block, 16);
  block.write('sha256', 32, 'latin1');
  block.writeUInt32LE(VERITY_BLOCK_SIZE, 64);
  block.writeUInt32LE(VERITY_BLOCK_SIZE, 68);
  block.writeBigUInt64LE(BigInt(options.dataBlocks), 72);
  block.writeUInt16LE(options.salt.length, 80);
  block.set(options.salt, 88);
  return block;
}

/** The superblock at the start of `block`, or undefined when there is none. */
export function parseVeritySuperblock(block: Buffer): VeritySuperblock | undefined {
  if (block.length < VERITY_SUPERBLOCK_SIZE || block.toString('latin1', 0, 8) !== SIGNATURE) return undefined;
  const saltSize = block.readUInt16LE(80);
  const uuidHex = block.subarray(16, 32).toString('hex');
  return {
    version: block.readUInt32LE(8),
    hashType: block.readUInt32LE(12),
    uuid: `${uuidHex.slice(0, 8)}-${uuidHex.slice(8, 12)}-${uuidHex.slice(12, 16)}-${uuidHex.slice(16, 20)}-${uuidHex.slice(20)}`,
    algorithm: block.toString('latin1', 32, 64).replace(/\0+$/, ''),
    dataBlockSize: block.readUInt32LE(64),
    hashBlockSize: block.readUInt32LE(68),
    dataBlocks: Number(block.readBigUInt64LE(72)),
    salt: Buffer.from(block.subarray(88, 88 + Math.min(saltSize, 256))),
  };
}

// ---------------------------------------------------------------------------------------------
// Hashing. Reads land in slots of [salt | block] so each block is one contiguous one-shot hash.

/** A region of a file: the data device or hash device, possibly inside a disk image. */
export interface FileRegion {
  path: string;
  /** Byte offset of the region inside the file. */
  offset?: number;
}

export interface Level0Task {
  mode: 'write' | 'compare';
  data: FileRegion;
  hash: FileRegion;
  salt: Uint8Array;
  /** Hash block (from the hash device start) where level 0 begins. */
  level0Block: number;
  dataBlocks: number;
  /** Int32 slots shared by all participants, indexed by the Q_* constants. */
  queue: SharedArrayBuffer;
}

/** Next chunk to take. Every participant takes chunks until none are left. */
const Q_NEXT = 0;
/** Participants between "about to take a chunk" and "done with it". */
const Q_IN_FLIGHT = 1;
/** Compare mode: first chunk and first data block found to differ (chunks after it are skipped). */
const Q_MISMATCH_CHUNK = 2;
const Q_MISMATCH_BLOCK = 3;
/** Set when a participant failed; the main thread then collects the worker's error. */
const Q_FAILED = 4;
const Q_SLOTS = 5;
const NONE = 0x7fffffff;

function storeMin(queue: Int32Array, index: number, value: number): void {
  for (let current = Atomics.load(queue, index); value < current; current = Atomics.load(queue, index)) {
    if (Atomics.compareExchange(queue, index, current, value) === current) return;
  }
}

interface SaltedSlots {
  /** [salt | block] repeated; each slot is hashed in one call. */
  slots: Buffer[];
  /** The block part of each slot, where reads land. */
  views: Buffer[];
}

function saltedSlots(salt: Uint8Array, blocks: number): SaltedSlots {
  const slotSize = salt.length + VERITY_BLOCK_SIZE;
  const buffer = Buffer.allocUnsafe(slotSize * blocks);
  const slots: Buffer[] = [];
  const views: Buffer[] = [];
  for (let index = 0; index < blocks; index++) {
    buffer.set(salt, index * slotSize);
    slots.push(buffer.subarray(index * slotSize, (index + 1) * slotSize));
    views.push(buffer.subarray(index * slotSize + salt.length, (index + 1) * slotSize));
  }
  return { slots, views };
}

/**
 * Digests of the first `count` slots, written at `offset` of `out`. One-shot `crypto.hash` with a
 * latin1 string result is the cheapest per-call path in Node (no Buffer per digest); joining the
 * strings and writing once keeps the per-block cost near the raw SHA-256 cost.
 */
function hashSlots(slots: SaltedSlots, count: number, out: Buffer, offset: number): void {
  let joined = '';
  for (let index = 0; index < count; index++) joined += hash('sha256', slots.slots[index]!, 'binary');
  out.write(joined, offset, count * DIGEST_SIZE, 'latin1');
}

function readFully(fd: number, views: Buffer[], position: number, what: string): void {
  let at = position;
  let expected = 0;
  for (const view of views) expected += view.length;
  let bytes = readvSync(fd, views, at);
  if (bytes === expected) return;
  // Short read (end of file, or more views than one readv takes): continue after the filled part.
  let pending = views;
  for (;;) {
    if (bytes === 0) throw new BrlError(`${what} ends before its last data block (at byte ${at})`, { exitCode: ExitCode.verifyFailed, code: 'VERITY_SHORT_DATA' });
    at += bytes;
    let index = 0;
    while (index < pending.length && bytes >= pending[index]!.length) bytes -= pending[index++]!.length;
    pending = bytes > 0 ? [pending[index]!.subarray(bytes), ...pending.slice(index + 1)] : pending.slice(index);
    if (pending.length === 0) return;
    bytes = readvSync(fd, pending, at);
  }
}

function readExactly(fd: number, buffer: Buffer, position: number, what: string): void {
  readFully(fd, [buffer], position, what);
}

/** Takes chunks from the shared queue, hashes them and writes or compares their level-0 hash blocks. */
export function runLevel0Task(task: Level0Task): void {
  const queue = new Int32Array(task.queue);
  const dataFd = openSync(task.data.path, 'r');
  const hashFd = openSync(task.hash.path, task.mode === 'write' ? 'r+' : 'r');
  const slots = saltedSlots(task.salt, CHUNK_BLOCKS);
  const digests = Buffer.alloc((CHUNK_BLOCKS / DIGESTS_PER_BLOCK) * VERITY_BLOCK_SIZE);
  const stored = Buffer.alloc(digests.length);
  try {
    for (;;) {
      // Announce before taking, so the main thread never sees "nothing in flight" while a taken chunk is unfinished.
      Atomics.add(queue, Q_IN_FLIGHT, 1);
      try {
        if (Atomics.load(queue, Q_FAILED) !== 0) return;
        const chunk = Atomics.add(queue, Q_NEXT, 1);
        const first = chunk * CHUNK_BLOCKS;
        if (first >= task.dataBlocks || chunk > Atomics.load(queue, Q_MISMATCH_CHUNK)) return;
        const count = Math.min(CHUNK_BLOCKS, task.dataBlocks - first);
        readFully(dataFd, slots.views.slice(0, count), (task.data.offset ?? 0) + first * VERITY_BLOCK_SIZE, task.data.path);
        hashSlots(slots, count, digests, 0);
        const hashBlocks = Math.ceil(count / DIGESTS_PER_BLOCK);
        digests.fill(0, count * DIGEST_SIZE, hashBlocks * VERITY_BLOCK_SIZE);
        const position = (task.hash.offset ?? 0) + (task.level0Block + first / DIGESTS_PER_BLOCK) * VERITY_BLOCK_SIZE;
        const length = hashBlocks * VERITY_BLOCK_SIZE;
        if (task.mode === 'write') {
          writeSync(hashFd, digests, 0, length, position);
          continue;
        }
        readExactly(hashFd, stored.subarray(0, length), position, task.hash.path);
        for (let index = 0; index < count; index++) {
          const at = index * DIGEST_SIZE;
          if (stored.compare(digests, at, at + DIGEST_SIZE, at, at + DIGEST_SIZE) !== 0) {
            storeMin(queue, Q_MISMATCH_BLOCK, first + index);
            storeMin(queue, Q_MISMATCH_CHUNK, chunk);
            break;
          }
        }
      } catch (error) {
        Atomics.store(queue, Q_FAILED, 1);
        throw error;
      } finally {
        Atomics.sub(queue, Q_IN_FLIGHT, 1);
        Atomics.notify(queue, Q_IN_FLIGHT);
      }
    }
  } finally {
    closeSync(dataFd);
    closeSync(hashFd);
  }
}

const workerUrl = new URL(import.meta.url.endsWith('.ts') ? './verity-worker.ts' : './verity-worker.js', import.meta.url);

interface StartedWorker {
  worker: Worker;
  /** Settles when the worker exits; rejects with its error. */
  done: Promise<void>;
  exited: boolean;
}

function startWorker(task: Level0Task): StartedWorker {
  const execArgv = workerExecArgv();
  const worker = new Worker(workerUrl, { workerData: task, execArgv });
  const started: StartedWorker = { worker, done: Promise.resolve(), exited: false };
  started.done = new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', () => {
      started.exited = true;
      resolve();
    });
  });
  started.done.catch(() => undefined);
  return started;
}

/**
 * Level 0 over all data blocks, shared between this thread and `threads − 1` workers. This
 * thread works too and, once the queue is empty, waits only for chunks a worker actually took:
 * workers still starting up are terminated instead of waited for.
 */
async function runLevel0(base: Omit<Level0Task, 'queue'>, threads: number): Promise<{ firstMismatch: number }> {
  const queue = new SharedArrayBuffer(Q_SLOTS * 4);
  const slots = new Int32Array(queue);
  slots[Q_MISMATCH_CHUNK] = NONE;
  slots[Q_MISMATCH_BLOCK] = NONE;
  const task: Level0Task = { ...base, queue };
  const workerCount = Math.max(0, Math.min(threads, Math.ceil(base.dataBlocks / PARALLEL_THRESHOLD_BLOCKS)) - 1);
  const workers = Array.from({ length: workerCount }, () => startWorker(task));
  let ownError: unknown;
  try {
    runLevel0Task(task);
  } catch (error) {
    ownError = error;
  }
  // Poll (the tail is at most one chunk per worker) without blocking the event loop, so a worker
  // that died mid-chunk is noticed by its exit event.
  for (let inFlight = Atomics.load(slots, Q_IN_FLIGHT); inFlight !== 0; inFlight = Atomics.load(slots, Q_IN_FLIGHT)) {
    if (workers.every((started) => started.exited)) {
      Atomics.store(slots, Q_FAILED, 1);
      break;
    }
    await setTimeout(1);
  }
  const workerError = ownError === undefined && Atomics.load(slots, Q_FAILED) !== 0
    ? (await Promise.allSettled(workers.map(({ done }) => done))).find((result) => result.status === 'rejected')
    : undefined;
  await Promise.all(workers.map(({ worker }) => worker.terminate()));
  if (ownError !== undefined) throw ownError;
  if (workerError) throw workerError.reason;
  if (Atomics.load(slots, Q_FAILED) !== 0) throw new Error('a dm-verity worker thread stopped in the middle of a chunk');
  const block = Atomics.load(slots, Q_MISMATCH_BLOCK);
  return { firstMismatch: block === NONE ? -1 : block };
}

/** Digests of `blocks` hash blocks starting at `firstBlock` of the hash device, zero-padded to whole blocks. */
function hashLevelBlocks(fd: number, region: FileRegion, firstBlock: number, blocks: number, salt: Uint8Array): Buffer {
  const out = Buffer.alloc(Math.ceil(blocks / DIGESTS_PER_BLOCK) * VERITY_BLOCK_SIZE);
  const slots = saltedSlots(salt, Math.min(blocks, CHUNK_BLOCKS));
  for (let first = 0; first < blocks; first += CHUNK_BLOCKS) {
    const count = Math.min(CHUNK_BLOCKS, blocks - first);
    readFully(fd, slots.views.slice(0, count), (region.offset ?? 0) + (firstBlock + first) * VERITY_BLOCK_SIZE, region.path);
    hashSlots(slots, count, out, first * DIGEST_SIZE);
  }
  return out;
}

function hashOneBlock(fd: number, region: FileRegion, block: number, salt: Uint8Array): string {
  const slots = saltedSlots(salt, 1);
  readFully(fd, slots.views, (region.offset ?? 0) + block * VERITY_BLOCK_SIZE, region.path);
  return hash('sha256', slots.slots[0]!, 'hex');
}

function dataBlockCount(path: string): number {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size === 0 || size % VERITY_BLOCK_SIZE !== 0) {
      throw new BrlError(`${path} is ${size} bytes, not a positive multiple of ${VERITY_BLOCK_SIZE}`, {
        exitCode: ExitCode.badInput,
        code: 'VERITY_BAD_DATA_SIZE',
        hint: 'dm-verity hashes whole 4 KiB blocks; make the filesystem image a multiple of 4096 bytes',
      });
    }
    return size / VERITY_BLOCK_SIZE;
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `hashPath` (superblock + tree, zero padded to `hashFileSize` when given) for the data in
 * `dataPath`, exactly as `veritysetup format --format 1 --hash sha256 --data-block-size 4096
 * --hash-block-size 4096 --salt <salt> --uuid <uuid>` does. Memory stays bounded: level 0 is
 * streamed to disk in 4 MiB reads per thread; upper levels are read back from the hash file.
 */
export async function formatVerity(dataPath: string, hashPath: string, options: VerityOptions): Promise<VerityResult> {
  const dataBlocks = dataBlockCount(dataPath);
  const layout = verityTreeLayout(dataBlocks);
  const hashSize = layout.totalBlocks * VERITY_BLOCK_SIZE;
  if (options.hashFileSize !== undefined && options.hashFileSize < hashSize) {
    throw new BrlError(`dm-verity tree of ${dataPath} needs ${hashSize} bytes but the hash partition holds ${options.hashFileSize}`, {
      exitCode: ExitCode.buildFailed,
      code: 'VERITY_TREE_TOO_LARGE',
      hint: 'make the root filesystem smaller or raise os-image-size-gib',
    });
  }
  const hashRegion: FileRegion = { path: hashPath };
  const fd = openSync(hashPath, 'w');
  try {
    ftruncateSync(fd, options.hashFileSize ?? hashSize);
    writeSync(fd, serializeVeritySuperblock({ uuid: options.uuid, salt: options.salt, dataBlocks }), 0, VERITY_SUPERBLOCK_SIZE, 0);
  } finally {
    closeSync(fd);
  }
  let rootHash: string;
  if (layout.levels.length === 0) {
    const dataFd = openSync(dataPath, 'r');
    try {
      rootHash = hashOneBlock(dataFd, { path: dataPath }, 0, options.salt);
    } finally {
      closeSync(dataFd);
    }
  } else {
    await runLevel0({ mode: 'write', data: { path: dataPath }, hash: hashRegion, salt: options.salt, level0Block: layout.levels[0]!.firstBlock, dataBlocks }, options.threads ?? availableParallelism());
    const hashFd = openSync(hashPath, 'r+');
    try {
      for (let level = 1; level < layout.levels.length; level++) {
        const below = layout.levels[level - 1]!;
        const digests = hashLevelBlocks(hashFd, hashRegion, below.firstBlock, below.blocks, options.salt);
        writeSync(hashFd, digests, 0, digests.length, layout.levels[level]!.firstBlock * VERITY_BLOCK_SIZE);
      }
      rootHash = hashOneBlock(hashFd, hashRegion, layout.levels.at(-1)!.firstBlock, options.salt);
    } finally {
      closeSync(hashFd);
    }
  }
  return { rootHash, salt: Buffer.from(options.salt).toString('hex'), uuid: options.uuid, dataBlocks, hashSize };
}

export interface VerityCheck {
  ok: boolean;
  superblock: VeritySuperblock;
  /** Root hash recomputed from the stored tree. */
  rootHash: string;
  /** First data block whose hash differs from the stored tree. */
  firstBadDataBlock?: number;
  /** Tree level whose stored blocks do not hash to the level above (1 = the level over level 0). */
  firstBadLevel?: number;
  problems: string[];
}

/**
 * Recomputes the tree of `data` and compares it with the tree stored in `hash` (superblock at its
 * start), level by level, and the recomputed root with `expectedRootHash` when given.
 */
export async function verifyVerity(data: FileRegion, hash: FileRegion, options: { expectedRootHash?: string; threads?: number } = {}): Promise<VerityCheck> {
  const hashFd = openSync(hash.path, 'r');
  try {
    const head = Buffer.alloc(VERITY_BLOCK_SIZE);
    readExactly(hashFd, head, hash.offset ?? 0, hash.path);
    const superblock = parseVeritySuperblock(head);
    if (!superblock) {
      throw new BrlError(`no dm-verity superblock at byte ${hash.offset ?? 0} of ${hash.path}`, { exitCode: ExitCode.verifyFailed, code: 'VERITY_NO_SUPERBLOCK' });
    }
    const problems: string[] = [];
    if (superblock.version !== 1 || superblock.hashType !== 1 || superblock.algorithm !== 'sha256' ||
      superblock.dataBlockSize !== VERITY_BLOCK_SIZE || superblock.hashBlockSize !== VERITY_BLOCK_SIZE) {
      throw new BrlError(`dm-verity superblock in ${hash.path} is not format 1 / sha256 / 4096 / 4096`, { exitCode: ExitCode.verifyFailed, code: 'VERITY_UNSUPPORTED' });
    }
    const layout = verityTreeLayout(superblock.dataBlocks);
    const dataEnd = (data.offset ?? 0) + superblock.dataBlocks * VERITY_BLOCK_SIZE;
    const dataSize = statSync(data.path).size;
    // Block devices report size 0 here; their reads fail on their own if too short.
    if (dataSize > 0 && dataSize < dataEnd) {
      throw new BrlError(`${data.path} ends at byte ${dataSize}, before the ${superblock.dataBlocks} data blocks the verity superblock covers (byte ${dataEnd})`, {
        exitCode: ExitCode.verifyFailed,
        code: 'VERITY_SHORT_DATA',
      });
    }
    const result: VerityCheck = { ok: true, superblock, rootHash: '', problems };
    if (layout.levels.length === 0) {
      const dataFd = openSync(data.path, 'r');
      try {
        result.rootHash = hashOneBlock(dataFd, data, 0, superblock.salt);
      } finally {
        closeSync(dataFd);
      }
    } else {
      const level0 = await runLevel0({ mode: 'compare', data, hash, salt: superblock.salt, level0Block: layout.levels[0]!.firstBlock, dataBlocks: superblock.dataBlocks }, options.threads ?? availableParallelism());
      if (level0.firstMismatch >= 0) {
        result.firstBadDataBlock = level0.firstMismatch;
        problems.push(`data block ${level0.firstMismatch} (byte ${level0.firstMismatch * VERITY_BLOCK_SIZE}) does not match its hash in the verity tree`);
      }
      for (let level = 1; level < layout.levels.length; level++) {
        const below = layout.levels[level - 1]!;
        const computed = hashLevelBlocks(hashFd, hash, below.firstBlock, below.blocks, superblock.salt);
        const stored = Buffer.alloc(computed.length);
        readExactly(hashFd, stored, (hash.offset ?? 0) + layout.levels[level]!.firstBlock * VERITY_BLOCK_SIZE, hash.path);
        if (!stored.equals(computed)) {
          result.firstBadLevel ??= level;
          problems.push(`verity tree level ${level - 1} does not hash to the stored level ${level}`);
        }
      }
      result.rootHash = hashOneBlock(hashFd, hash, layout.levels.at(-1)!.firstBlock, superblock.salt);
    }
    if (options.expectedRootHash !== undefined && options.expectedRootHash.toLowerCase() !== result.rootHash) {
      problems.push(`root hash of the stored tree is ${result.rootHash}, expected ${options.expectedRootHash.toLowerCase()}`);
    }
    result.ok = problems.length === 0;
    return result;
  } finally {
    closeSync(hashFd);
  }
}

/** The superblock at `region`, or undefined. */
export function readVeritySuperblock(region: FileRegion): VeritySuperblock | undefined {
  const fd = openSync(region.path, 'r');
  try {
    const head = Buffer.alloc(VERITY_SUPERBLOCK_SIZE);
    const bytes = readSync(fd, head, 0, VERITY_SUPERBLOCK_SIZE, region.offset ?? 0);
    return bytes === VERITY_SUPERBLOCK_SIZE ? parseVeritySuperblock(head) : undefined;
  } finally {
    closeSync(fd);
  }
}
