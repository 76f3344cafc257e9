// Decodes LZ4 frames whose blocks are independent (what `lz4` and brl write) on several threads,
// in order, with a fixed pool of block buffers: throughput scales with cores and memory stays flat.
import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { BrlError, ExitCode } from '../core/errors.ts';
import { createLz4Decoder } from '../image/lz4.ts';
import { ArenaDecoder, createBlockArena, type BlockArena } from '../image/lz4-wasm.ts';
import { xxhash32 } from '../image/xxhash32.ts';
import { workerExecArgv } from '../core/worker-argv.ts';

const FRAME_MAGIC = 0x184d2204;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
const BLOCK_MAX_SIZES: Record<number, number> = { 4: 64 * 1024, 5: 256 * 1024, 6: 1024 * 1024, 7: 4 * 1024 * 1024 };

/** A block for a decoding thread: offsets into the shared arena. */
export interface BlockJob {
  seq: number;
  input: number;
  length: number;
  uncompressed: boolean;
  checksum?: number;
  output: number;
  capacity: number;
}

export interface BlockResult {
  seq: number;
  input: number;
  output: number;
  length: number;
  error?: string;
}

/** What the main thread posts to a worker: a new arena (before any job that uses it) or a job. */
export type WorkerMessage = { arena: BlockArena } | BlockJob;

/** Decodes one block inside the arena (in a worker, or inline on the main thread); errors become `error`. */
export function decodeJob(job: BlockJob, decoder: ArenaDecoder, bytes: Uint8Array): BlockResult {
  const result: BlockResult = { seq: job.seq, input: job.input, output: job.output, length: 0 };
  try {
    const input = bytes.subarray(job.input, job.input + job.length);
    if (job.checksum !== undefined && xxhash32(input) !== job.checksum) throw new Error('block checksum mismatch');
    if (job.uncompressed) {
      bytes.set(input, job.output);
      result.length = job.length;
    } else {
      result.length = decoder.decode(job.input, job.length, job.output, job.capacity);
    }
  } catch (error) {
    result.error = (error as Error).message;
  }
  return result;
}

function corrupt(message: string): BrlError {
  return new BrlError(`LZ4 stream is corrupt: ${message}`, {
    exitCode: ExitCode.verifyFailed,
    code: 'LZ4_CORRUPT',
    hint: 'the download was damaged; nothing was marked bootable. Retry the update',
  });
}

/**
 * The arena of the last decode that finished, reused by the next one: updog decodes three images
 * in a row, and a finished image's 20 MiB of buffers would otherwise still be waiting for the
 * garbage collector while the next image fills new ones (peak RSS).
 */
let spareArena: BlockArena | undefined;

function takeArena(bytes: number): BlockArena {
  const spare = spareArena;
  if (spare && spare.buffer.byteLength >= bytes) {
    spareArena = undefined;
    return spare;
  }
  return createBlockArena(bytes);
}

const workerUrl = new URL(import.meta.url.endsWith('.ts') ? './lz4-worker.ts' : './lz4-worker.js', import.meta.url);

/** Frame layout as parsed from a frame descriptor. */
interface Frame {
  blockMaxSize: number;
  blockChecksum: boolean;
  contentChecksum: boolean;
  contentSize: bigint | undefined;
  decoded: bigint;
}

/**
 * Reads bytes from an async source in exact amounts: small fields into a scratch buffer, block
 * payloads straight into the destination, so a block is copied once on its way to a worker.
 */
class ByteReader {
  readonly #source: AsyncIterator<Buffer>;
  #chunk: Buffer = Buffer.alloc(0);
  #at = 0;
  #ended = false;
  constructor(source: AsyncIterable<Buffer>) {
    this.#source = source[Symbol.asyncIterator]();
  }

  /** Ends the source early (a corrupt block, a consumer that stopped), so it can clean up. */
  async close(): Promise<void> {
    if (!this.#ended) await this.#source.return?.(undefined);
    this.#ended = true;
  }

  async #more(): Promise<boolean> {
    while (this.#at >= this.#chunk.length) {
      if (this.#ended) return false;
      const next = await this.#source.next();
      if (next.done) {
        this.#ended = true;
        return false;
      }
      this.#chunk = next.value;
      this.#at = 0;
    }
    return true;
  }

  /** Fills `target[0, length)`; false if the source ended before the first byte, throws if inside. */
  async read(target: Uint8Array, length: number, what: string): Promise<boolean> {
    let filled = 0;
    while (filled < length) {
      if (!(await this.#more())) {
        if (filled === 0) return false;
        throw corrupt(`stream ends inside ${what}`);
      }
      const take = Math.min(length - filled, this.#chunk.length - this.#at);
      target.set(this.#chunk.subarray(this.#at, this.#at + take), filled);
      this.#at += take;
      filled += take;
    }
    return true;
  }

  async skip(length: number, what: string): Promise<void> {
    let left = length;
    while (left > 0) {
      if (!(await this.#more())) throw corrupt(`stream ends inside ${what}`);
      const take = Math.min(left, this.#chunk.length - this.#at);
      this.#at += take;
      left -= take;
    }
  }

  /** The unread bytes of the current chunk followed by the rest of the source. */
  async *rest(): AsyncGenerator<Buffer> {
    if (this.#at < this.#chunk.length) yield this.#chunk.subarray(this.#at);
    this.#at = this.#chunk.length;
    if (this.#ended) return;
    for (let next = await this.#source.next(); !next.done; next = await this.#source.next()) yield next.value;
  }
}

export interface ParallelDecodeOptions {
  /**
   * Blocks decoded at once; default the available cores, at most 4. The main thread is one of
   * them (it decodes a block itself whenever every worker is busy), so 1 needs no worker thread
   * and n needs n − 1.
   */
  decoders?: number;
}

/**
 * Yields the decoded content of `source` (LZ4 frames) in order. Each yielded buffer is valid until
 * the next one is requested: it returns to the pool then. Frames with linked blocks (rare; `lz4
 * -BD`) are decoded sequentially by image/lz4.ts. Block and header checksums and declared content
 * sizes are checked; the content checksum is not recomputed here, because the caller verifies the
 * compressed bytes against signed metadata and the decoded root against dm-verity.
 *
 * The next block is already being fetched and decoded while the consumer handles the current one
 * (a write goes to the thread pool, so the main thread would otherwise wait with it).
 */
export async function* decodeLz4Parallel(source: AsyncIterable<Buffer>, options: ParallelDecodeOptions = {}): AsyncGenerator<Buffer> {
  const lease: ArenaLease = {};
  const blocks = decodeInOrder(source, options, lease);
  // A prefetch that fails while the consumer is still busy is only awaited when the consumer asks
  // for more: marked handled meanwhile, or Node would end the process on an unhandled rejection.
  const prefetch = (): Promise<IteratorResult<Buffer>> => {
    const next = blocks.next();
    next.catch(() => undefined);
    return next;
  };
  let pending: Promise<IteratorResult<Buffer>> | undefined = prefetch();
  try {
    for (;;) {
      const current = await pending;
      pending = undefined;
      if (current.done) return;
      pending = prefetch();
      yield current.value;
    }
  } finally {
    // A consumer that stopped early: let the block in progress settle, then stop the decoder.
    if (pending) await pending.catch(() => undefined);
    await blocks.return(undefined);
    // Only now is the consumer done with the last block: the decoder finished while it was still
    // being written (prefetch), so releasing the arena any earlier would let a concurrent decode
    // in this process overwrite it.
    if (lease.arena) spareArena = lease.arena;
  }
}

/** The arena a decode holds, released by `decodeLz4Parallel` once its consumer is done. */
interface ArenaLease {
  arena?: BlockArena;
}

/**
 * The decoder behind `decodeLz4Parallel`. `decodeLz4Parallel` asks for block i + 1 while its
 * consumer still holds block i, so handing out i + 1 puts i's buffer back in the pool; that is
 * safe because every hand-out is followed by a yield and buffers are only filled after the next
 * resume, which comes once the consumer asked for more (and so is done with block i).
 */
async function* decodeInOrder(source: AsyncIterable<Buffer>, options: ParallelDecodeOptions, lease: ArenaLease): AsyncGenerator<Buffer> {
  const reader = new ByteReader(source);
  const field = Buffer.alloc(16);
  const threads = Math.max(1, Math.min(options.decoders ?? availableParallelism(), 4));
  const workers: Worker[] = [];
  // Jobs each worker is decoding (0 or 1), and which worker has which block.
  const busy: number[] = [];
  const owner = new Map<number, number>();
  const results = new Map<number, BlockResult>();
  let wake: (() => void) | undefined;
  let workerError: Error | undefined;
  // Block buffers are offsets into one shared arena: enough to keep every thread decoding while one
  // finished block is being written. Untouched ones cost no memory (pages are committed on use).
  const inputSlots = threads;
  const outputSlots = threads + 1;
  const freeInputs: number[] = [];
  const freeOutputs: number[] = [];
  let arena: BlockArena | undefined;
  let arenaBytes: Uint8Array | undefined;
  let mainDecoder: ArenaDecoder | undefined;
  let poolBlockSize = 0;
  let dispatched = 0;
  let yielded = 0;
  let sawFrame = false;

  const startWorkers = (): void => {
    const execArgv = workerExecArgv();
    for (let index = 0; index < threads - 1; index++) {
      const worker = new Worker(workerUrl, { execArgv });
      worker.on('message', (result: BlockResult) => {
        busy[owner.get(result.seq)!] = 0;
        owner.delete(result.seq);
        results.set(result.seq, result);
        wake?.();
      });
      worker.on('error', (error) => {
        workerError = error;
        wake?.();
      });
      workers.push(worker);
      busy.push(0);
    }
  };
  const nextResult = async (): Promise<BlockResult> => {
    for (;;) {
      if (workerError) throw workerError;
      const result = results.get(yielded);
      if (result) {
        results.delete(yielded);
        return result;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  };

  // The output buffer handed out last goes back to the pool with the next hand-out (see decodeInOrder).
  let lent: number | undefined;
  const handOut = async (frame: Frame): Promise<Buffer> => {
    if (lent !== undefined) freeOutputs.push(lent);
    const result = await nextResult();
    if (result.error) throw corrupt(result.error);
    freeInputs.push(result.input);
    frame.decoded += BigInt(result.length);
    yielded += 1;
    lent = result.output;
    return Buffer.from(arenaBytes!.buffer, result.output, result.length);
  };

  try {
    for (;;) {
      if (!(await reader.read(field, 4, 'a frame magic number'))) break;
      const magic = field.readUInt32LE(0);
      if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
        await reader.read(field, 4, 'a skippable frame size');
        await reader.skip(field.readUInt32LE(0), 'a skippable frame');
        continue;
      }
      if (magic !== FRAME_MAGIC) throw corrupt(`bad frame magic 0x${magic.toString(16)}`);
      await reader.read(field, 2, 'a frame descriptor');
      const flags = field[0]!;
      const bd = field[1]!;
      const descriptorLength = 2 + (flags & 0x08 ? 8 : 0) + (flags & 0x01 ? 4 : 0);
      await reader.read(field.subarray(2), descriptorLength - 2 + 1, 'a frame descriptor');
      if ((flags >>> 6) !== 1) throw corrupt(`unsupported frame version ${flags >>> 6}`);
      if (flags & 0x02) throw corrupt('reserved frame flag bit is set');
      if (flags & 0x01) throw corrupt('frames that need a dictionary are not supported');
      const blockMaxSize = BLOCK_MAX_SIZES[(bd >>> 4) & 7];
      if (blockMaxSize === undefined || bd & 0x8f) throw corrupt('bad block size descriptor');
      if (((xxhash32(field.subarray(0, descriptorLength)) >>> 8) & 0xff) !== field[descriptorLength]) throw corrupt('frame header checksum mismatch');
      if ((flags & 0x20) === 0) {
        if (sawFrame) throw corrupt('a frame with linked blocks follows frames with independent blocks');
        // Linked blocks decode strictly in order: hand the frame (re-assembled) to the sequential decoder.
        const header = Buffer.concat([Buffer.from([0x04, 0x22, 0x4d, 0x18]), field.subarray(0, descriptorLength + 1)]);
        async function* whole(): AsyncGenerator<Buffer> {
          yield header;
          yield* reader.rest();
        }
        const input = Readable.from(whole(), { objectMode: false });
        const decoder = createLz4Decoder();
        input.on('error', (error) => decoder.destroy(error));
        yield* input.pipe(decoder) as AsyncIterable<Buffer>;
        return;
      }
      sawFrame = true;
      const frame: Frame = {
        blockMaxSize,
        blockChecksum: (flags & 0x10) !== 0,
        contentChecksum: (flags & 0x04) !== 0,
        contentSize: flags & 0x08 ? field.readBigUInt64LE(2) : undefined,
        decoded: 0n,
      };
      if (workers.length === 0 && threads > 1) startWorkers();
      if (poolBlockSize < blockMaxSize) {
        // Larger blocks than an earlier frame's (all of whose blocks are handed out): new buffers.
        poolBlockSize = blockMaxSize;
        arena = takeArena((inputSlots + outputSlots) * poolBlockSize);
        lease.arena = arena;
        arenaBytes = new Uint8Array(arena.buffer);
        mainDecoder = new ArenaDecoder(arena);
        for (const worker of workers) worker.postMessage({ arena } satisfies WorkerMessage);
        // Popped from the end: the first slots are reused and the others stay uncommitted when few are needed.
        freeInputs.length = 0;
        freeOutputs.length = 0;
        for (let slot = inputSlots - 1; slot >= 0; slot--) freeInputs.push(slot * poolBlockSize);
        for (let slot = inputSlots + outputSlots - 1; slot >= inputSlots; slot--) freeOutputs.push(slot * poolBlockSize);
        lent = undefined;
      }
      for (;;) {
        await reader.read(field, 4, 'a block size');
        const word = field.readUInt32LE(0);
        if (word === 0) break;
        const size = word & 0x7fffffff;
        if (size > frame.blockMaxSize) throw corrupt(`block of ${size} bytes exceeds the frame's ${frame.blockMaxSize}-byte maximum`);
        // Hand out finished blocks until an input and an output buffer are free.
        while (freeInputs.length === 0 || freeOutputs.length === 0) yield await handOut(frame);
        const input = freeInputs.pop()!;
        const output = freeOutputs.pop()!;
        await reader.read(arenaBytes!.subarray(input, input + size), size, 'a block');
        let checksum: number | undefined;
        if (frame.blockChecksum) {
          await reader.read(field, 4, 'a block checksum');
          checksum = field.readUInt32LE(0);
        }
        const job: BlockJob = {
          seq: dispatched, input, length: size, uncompressed: (word & 0x80000000) !== 0, output, capacity: frame.blockMaxSize, ...(checksum === undefined ? {} : { checksum }),
        };
        // An idle worker takes the block; when all are busy the main thread decodes it itself.
        const idle = busy.findIndex((jobs) => jobs === 0);
        if (idle < 0) {
          results.set(job.seq, decodeJob(job, mainDecoder!, arenaBytes!));
        } else {
          busy[idle] = 1;
          owner.set(job.seq, idle);
          workers[idle]!.postMessage(job satisfies WorkerMessage);
        }
        dispatched += 1;
      }
      if (frame.contentChecksum) await reader.skip(4, 'a content checksum');
      while (yielded < dispatched) yield await handOut(frame);
      if (frame.contentSize !== undefined && frame.contentSize !== frame.decoded) {
        throw corrupt(`frame declares ${frame.contentSize} bytes of content but decodes to ${frame.decoded}`);
      }
    }
    if (!sawFrame) throw corrupt('no LZ4 frame in the input');
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
    await reader.close();
  }
}
