// LZ4 frame format: a streaming TypeScript decoder (hosts have no lz4 tool) and an encoder over the host's `lz4 -9`.
import { spawn } from 'node:child_process';
import { Duplex, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BrlError, ExitCode } from '../core/errors.ts';
import { XxHash32, xxhash32 } from './xxhash32.ts';

const FRAME_MAGIC = 0x184d2204;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
/** Back-reference window of linked blocks. */
const WINDOW = 64 * 1024;
const BLOCK_MAX_SIZES: Record<number, number> = { 4: 64 * 1024, 5: 256 * 1024, 6: 1024 * 1024, 7: 4 * 1024 * 1024 };

function corrupt(message: string): BrlError {
  return new BrlError(`LZ4 stream is corrupt: ${message}`, {
    exitCode: ExitCode.verifyFailed,
    code: 'LZ4_CORRUPT',
    hint: 'the file was damaged or truncated; fetch or rebuild it',
  });
}

/**
 * Decodes one LZ4 block from `src` into `dst` starting at `dstStart`. Matches may reach back to
 * `windowStart` (earlier output of linked blocks). Returns the end of the decoded output.
 */
export function decodeBlock(src: Uint8Array, dst: Uint8Array, dstStart: number, windowStart: number): number {
  const srcEnd = src.length;
  const dstEnd = dst.length;
  const srcView = new DataView(src.buffer, src.byteOffset, src.length);
  const dstView = new DataView(dst.buffer, dst.byteOffset, dst.length);
  let ip = 0;
  let op = dstStart;
  for (;;) {
    if (ip >= srcEnd) throw corrupt('block ends inside a sequence');
    const token = src[ip++]!;
    let literals = token >>> 4;
    if (literals === 15) {
      let byte: number;
      do {
        if (ip >= srcEnd) throw corrupt('block ends inside a literal length');
        byte = src[ip++]!;
        literals += byte;
      } while (byte === 255);
    }
    if (ip + literals > srcEnd || op + literals > dstEnd) throw corrupt('literal run overruns the block');
    if (literals < 32) {
      // Short runs move 4 bytes per step while 3 spare bytes remain on both sides; the bytes
      // written past the run are overwritten by the next sequence.
      if (ip + literals + 3 < srcEnd && op + literals + 3 < dstEnd) {
        for (let index = 0; index < literals; index += 4) dstView.setUint32(op + index, srcView.getUint32(ip + index, true), true);
      } else {
        for (let index = 0; index < literals; index++) dst[op + index] = src[ip + index]!;
      }
    } else {
      dst.set(src.subarray(ip, ip + literals), op);
    }
    ip += literals;
    op += literals;
    if (ip === srcEnd) return op;
    if (ip + 2 > srcEnd) throw corrupt('block ends inside a match offset');
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    let length = (token & 15) + 4;
    if ((token & 15) === 15) {
      let byte: number;
      do {
        if (ip >= srcEnd) throw corrupt('block ends inside a match length');
        byte = src[ip++]!;
        length += byte;
      } while (byte === 255);
    }
    let from = op - offset;
    if (offset === 0 || from < windowStart) throw corrupt(`match offset ${offset} points before the window`);
    if (op + length > dstEnd) throw corrupt('match overruns the block');
    if (length >= 32) {
      // An overlapping match repeats the last `offset` bytes; copying from `from` in chunks that
      // are multiples of `offset` (doubling each time) keeps the pattern and needs few calls.
      let copied = 0;
      while (copied < length) {
        const chunk = Math.min(op + copied - from, length - copied);
        dst.copyWithin(op + copied, from, from + chunk);
        copied += chunk;
      }
      op += length;
    } else if (offset >= 4 && op + length + 3 < dstEnd) {
      // Each 4-byte read lies wholly before the write position (offset ≥ 4), so overlap is safe.
      for (let index = 0; index < length; index += 4) dstView.setUint32(op + index, dstView.getUint32(from + index, true), true);
      op += length;
    } else {
      // Overlapping matches repeat the last `offset` bytes, so they must be copied forward byte by byte.
      const end = op + length;
      while (op < end) dst[op++] = dst[from++]!;
    }
  }
}

/** A private copy (memcpy; `Buffer.from(buffer)` goes through a slower generic path). */
function copyOf(bytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(bytes.length);
  bytes.copy(out);
  return out;
}

interface FrameState {
  blockMaxSize: number;
  independent: boolean;
  blockChecksum: boolean;
  contentChecksum: XxHash32 | undefined;
  contentSize: bigint | undefined;
  decodedSize: bigint;
}

export interface Lz4FrameDescriptor {
  blockMaxSize: number;
  /** Blocks decode on their own (no back-references into earlier blocks). */
  independent: boolean;
  /** Each block is followed by its xxHash32. */
  blockChecksum: boolean;
  /** The end mark is followed by the content's xxHash32. */
  contentChecksum: boolean;
  contentSize: bigint | undefined;
}

/**
 * The LZ4 frame parser behind `createLz4Decoder`: input is appended as it arrives and decoded
 * blocks are pulled one at a time, so the caller decides how much output exists at once.
 */
export class Lz4FrameParser {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #frame: FrameState | undefined;
  /** Linked blocks: the last WINDOW bytes of output plus room for one block. */
  #window: Buffer | undefined;
  #windowLength = 0;
  #sawFrame = false;

  /** The frame being decoded (after its header was parsed): what a reader needs to find and check its blocks. */
  get frame(): Lz4FrameDescriptor | undefined {
    const frame = this.#frame;
    return frame && {
      blockMaxSize: frame.blockMaxSize,
      independent: frame.independent,
      blockChecksum: frame.blockChecksum,
      contentChecksum: frame.contentChecksum !== undefined,
      contentSize: frame.contentSize,
    };
  }

  append(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /** The next decoded block, or undefined when more input is needed. */
  next(): Buffer | undefined {
    for (;;) {
      const decoded = this.#step();
      if (decoded !== true) return decoded;
    }
  }

  /** Call at end of input: throws if the input stopped inside a frame or held no frame. */
  finish(): void {
    if (this.#frame || this.#buffered > 0) throw corrupt(`stream ends in the middle of a frame (${this.#buffered} bytes left over)`);
    if (!this.#sawFrame) throw corrupt('no LZ4 frame in the input');
  }

  /** Removes and returns exactly `length` buffered bytes (caller checked they are there). */
  #take(length: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length >= length) {
      const taken = first.subarray(0, length);
      if (first.length === length) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(length);
      this.#buffered -= length;
      return taken;
    }
    const out = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const head = this.#chunks[0]!;
      const take = Math.min(head.length, length - filled);
      head.copy(out, filled, 0, take);
      filled += take;
      if (take === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(take);
    }
    this.#buffered -= length;
    return out;
  }

  #peek(length: number): Buffer {
    const taken = this.#take(length);
    this.#chunks.unshift(taken);
    this.#buffered += length;
    return taken;
  }

  /** One parsing step: a decoded block, undefined when input is short, true after other progress. */
  #step(): Buffer | undefined | true {
    if (!this.#frame) {
      if (this.#buffered < 4) return undefined;
      const magic = this.#peek(4).readUInt32LE(0);
      if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
        if (this.#buffered < 8) return undefined;
        const size = this.#peek(8).readUInt32LE(4);
        if (this.#buffered < 8 + size) return undefined;
        this.#take(8 + size);
        return true;
      }
      if (magic !== FRAME_MAGIC) throw corrupt(`bad frame magic 0x${magic.toString(16)}`);
      return this.#readFrameHeader() ? true : undefined;
    }
    if (this.#buffered < 4) return undefined;
    const word = this.#peek(4).readUInt32LE(0);
    if (word === 0) {
      const trailer = this.#frame.contentChecksum ? 4 : 0;
      if (this.#buffered < 4 + trailer) return undefined;
      this.#take(4);
      this.#endFrame(trailer === 4 ? this.#take(4).readUInt32LE(0) : undefined);
      return true;
    }
    const uncompressed = (word & 0x80000000) !== 0;
    const size = word & 0x7fffffff;
    if (size > this.#frame.blockMaxSize) throw corrupt(`block of ${size} bytes exceeds the frame's ${this.#frame.blockMaxSize}-byte maximum`);
    const checksum = this.#frame.blockChecksum ? 4 : 0;
    if (this.#buffered < 4 + size + checksum) return undefined;
    this.#take(4);
    const block = this.#take(size);
    if (checksum && xxhash32(block) !== this.#take(4).readUInt32LE(0)) throw corrupt('block checksum mismatch');
    const decoded = this.#decode(block, uncompressed);
    const frame = this.#frame;
    frame.contentChecksum?.update(decoded);
    frame.decodedSize += BigInt(decoded.length);
    return decoded.length > 0 ? decoded : true;
  }

  /** Parses a frame descriptor once all of it is buffered; false while more input is needed. */
  #readFrameHeader(): boolean {
    if (this.#buffered < 7) return false;
    const head = this.#peek(6);
    const flags = head[4]!;
    const descriptorLength = 2 + (flags & 0x08 ? 8 : 0) + (flags & 0x01 ? 4 : 0);
    if (this.#buffered < 4 + descriptorLength + 1) return false;
    const header = this.#take(4 + descriptorLength + 1);
    const descriptor = header.subarray(4, 4 + descriptorLength);
    if ((flags >>> 6) !== 1) throw corrupt(`unsupported frame version ${flags >>> 6}`);
    if (flags & 0x02) throw corrupt('reserved frame flag bit is set');
    if (flags & 0x01) throw corrupt('frames that need a dictionary are not supported');
    const blockMaxSize = BLOCK_MAX_SIZES[(descriptor[1]! >>> 4) & 7];
    if (blockMaxSize === undefined || descriptor[1]! & 0x8f) throw corrupt('bad block size descriptor');
    if (((xxhash32(descriptor) >>> 8) & 0xff) !== header[4 + descriptorLength]) throw corrupt('frame header checksum mismatch');
    this.#frame = {
      blockMaxSize,
      independent: (flags & 0x20) !== 0,
      blockChecksum: (flags & 0x10) !== 0,
      contentChecksum: flags & 0x04 ? new XxHash32() : undefined,
      contentSize: flags & 0x08 ? descriptor.readBigUInt64LE(2) : undefined,
      decodedSize: 0n,
    };
    this.#windowLength = 0;
    this.#sawFrame = true;
    return true;
  }

  #decode(block: Buffer, uncompressed: boolean): Buffer {
    const frame = this.#frame!;
    if (frame.independent) {
      // Copied: a writer may reuse the chunk it handed us once its write callback ran.
      if (uncompressed) return copyOf(block);
      const out = Buffer.allocUnsafe(frame.blockMaxSize);
      return out.subarray(0, decodeBlock(block, out, 0, 0));
    }
    if (!this.#window || this.#window.length < WINDOW + frame.blockMaxSize) this.#window = Buffer.allocUnsafe(WINDOW + frame.blockMaxSize);
    const window = this.#window;
    if (this.#windowLength > WINDOW) {
      window.copyWithin(0, this.#windowLength - WINDOW, this.#windowLength);
      this.#windowLength = WINDOW;
    }
    const start = this.#windowLength;
    let end: number;
    if (uncompressed) {
      block.copy(window, start);
      end = start + block.length;
    } else {
      end = decodeBlock(block, window.subarray(0, start + frame.blockMaxSize), start, 0);
    }
    this.#windowLength = end;
    return copyOf(window.subarray(start, end));
  }

  #endFrame(storedChecksum: number | undefined): void {
    const frame = this.#frame!;
    if (frame.contentSize !== undefined && frame.contentSize !== frame.decodedSize) {
      throw corrupt(`frame declares ${frame.contentSize} bytes of content but decodes to ${frame.decodedSize}`);
    }
    if (storedChecksum !== undefined && frame.contentChecksum!.digest() !== storedChecksum) throw corrupt('content checksum mismatch');
    this.#frame = undefined;
  }
}

/**
 * A Duplex that decodes LZ4 frames (concatenated and skippable frames included), checking the
 * header, block and content checksums and the content size when the frame carries them. Memory
 * stays bounded even for highly compressed input (one chunk of zeros can hold hundreds of 4 MiB
 * blocks): input is kept up to the next complete block, and the next block is decoded only when
 * the reader has taken the previous one.
 */
export function createLz4Decoder(): Duplex {
  return Duplex.from(async function* decode(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    const parser = new Lz4FrameParser();
    for await (const chunk of source) {
      parser.append(chunk);
      for (let block = parser.next(); block !== undefined; block = parser.next()) yield block;
    }
    parser.finish();
  });
}

/**
 * Flags of every `.lz4` brl writes: level 9, 4 MiB independent blocks, content checksum, and the
 * content size when the input is a file (lz4 ignores `--content-size` on a pipe; there
 * `createLz4Encoder({contentSize})` adds it), so updog can refuse a too-small partition up front.
 */
export const LZ4_ENCODER_ARGS: readonly string[] = ['-9', '-B7', '-BI', '--content-size', '-q', '-c'];

export interface Lz4EncoderOptions {
  /** Bytes that will be written; recorded in the frame header (as `lz4 --content-size` does for a file) and checked. */
  contentSize?: number;
}

/**
 * Sets the content-size field in the frame header at the start of `frames` (lz4's stdout): FLG bit
 * 3, the size after BD, the header checksum recomputed. Everything after the header is unchanged,
 * so the result is byte-identical to `lz4 --content-size` reading a file of that size.
 */
async function* withContentSize(frames: AsyncIterable<Buffer>, contentSize: number): AsyncGenerator<Buffer> {
  let head = Buffer.alloc(0);
  let done = false;
  for await (const chunk of frames) {
    if (done) {
      yield chunk;
      continue;
    }
    head = Buffer.concat([head, chunk]);
    if (head.length < 7) continue;
    done = true;
    if (head.readUInt32LE(0) !== FRAME_MAGIC) throw new Error('lz4 wrote no LZ4 frame header');
    if (head[4]! & 0x08) {
      yield head;
      continue;
    }
    const descriptor = Buffer.alloc(10);
    descriptor[0] = head[4]! | 0x08;
    descriptor[1] = head[5]!;
    descriptor.writeBigUInt64LE(BigInt(contentSize), 2);
    yield Buffer.concat([head.subarray(0, 4), descriptor, Buffer.from([(xxhash32(descriptor) >>> 8) & 0xff]), head.subarray(7)]);
  }
}

/**
 * A Duplex that LZ4-frame-compresses what is written to it by piping through the host's `lz4`
 * with fixed flags, so equal input always gives equal output. The `lz4` CLI is used because a
 * level-9 (HC) compressor in JavaScript would be several times slower on GiB-sized images. With
 * `contentSize`, the frame records it and writing any other number of bytes fails the stream.
 */
export function createLz4Encoder(options: Lz4EncoderOptions = {}): Duplex {
  const child = spawn('lz4', [...LZ4_ENCODER_ARGS], { stdio: ['pipe', 'pipe', 'pipe'] });
  const { contentSize } = options;
  let counted = 0;
  const counter = contentSize === undefined ? undefined : new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      counted += chunk.length;
      callback(null, chunk);
    },
    flush(callback) {
      callback(counted === contentSize ? null : new Error(`the LZ4 encoder was promised ${contentSize} bytes but got ${counted}`));
    },
  });
  const readable = contentSize === undefined ? child.stdout : Readable.from(withContentSize(child.stdout, contentSize), { objectMode: false });
  const duplex = Duplex.from({ writable: counter ?? child.stdin, readable });
  if (counter) pipeline(counter, child.stdin).catch((error: Error) => duplex.destroy(error));
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => { stderr += text; });
  child.on('error', (error: NodeJS.ErrnoException) => {
    duplex.destroy(error.code === 'ENOENT'
      ? new BrlError('the lz4 tool is not installed', { exitCode: ExitCode.missingTool, code: 'MISSING_HOST_TOOL', hint: 'run `brl doctor` for the install command' })
      : error);
  });
  child.on('close', (code) => {
    if (code !== 0 && code !== null) duplex.destroy(new Error(`lz4 exited with code ${code}: ${stderr.trim()}`));
  });
  duplex.on('close', () => {
    if (child.exitCode === null) child.kill();
  });
  return duplex;
}
