// Reads an `.lz4` disk image in place, decoding only the blocks that hold the bytes asked for; memory stays bounded.
import type { FileHandle } from 'node:fs/promises';
import { BrlError, ExitCode } from '../core/errors.ts';
import type { OpenedDiskImage } from './image-reader.ts';
import { type Lz4FrameDescriptor, Lz4FrameParser } from './lz4.ts';

/** Decoded blocks kept for reads that come back to them (ext4 lookups alternate between inode tables and directories). */
const CACHED_BLOCKS = 4;
/** Compressed bytes read per step when decoding from the start. */
const STREAM_CHUNK = 1024 * 1024;
/** Magic, FLG, BD and the header checksum; the content size (FLG bit 3) adds 8. */
const HEADER_BYTES = 7;
const FLAG_CONTENT_SIZE = 0x08;

function corrupt(path: string, message: string): BrlError {
  return new BrlError(`LZ4 stream is corrupt: ${path}: ${message}`, {
    exitCode: ExitCode.verifyFailed,
    code: 'LZ4_CORRUPT',
    hint: 'the file was damaged or truncated; fetch or rebuild it',
  });
}

/** Where the decoded bytes of one block come from. */
interface BlockSource {
  /** Decoded size of the whole image. */
  sizeBytes: number;
  /** Decoded bytes of the block holding `position`, and where that block starts. */
  blockAt(position: number): Promise<{ start: number; bytes: Buffer }>;
}

async function readExactly(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

/**
 * A single frame of independent blocks with its content size (every `.lz4` brl writes): each
 * block is found by hopping over the block headers once (an index of one number per block) and
 * decoded on its own. Every block but the last must decode to the frame's block size; the
 * content size proves it: n − 1 blocks of at most that size add up to content size − last block
 * only when each is full.
 */
async function indexedBlocks(handle: FileHandle, path: string, fileSize: number, header: Buffer, frame: Lz4FrameDescriptor): Promise<BlockSource | undefined> {
  const blockStarts: number[] = [];
  const checksumBytes = frame.blockChecksum ? 4 : 0;
  let position = header.length;
  for (;;) {
    const word = await readExactly(handle, position, 4);
    if (word.length < 4) throw corrupt(path, `the file ends at byte ${fileSize} inside the frame`);
    if (word.readUInt32LE(0) === 0) break;
    // The top bit marks a stored (uncompressed) block; the rest is its size.
    const size = word.readUInt32LE(0) & 0x7fffffff;
    if (size > frame.blockMaxSize) throw corrupt(path, `block at byte ${position} is ${size} bytes, more than the frame's ${frame.blockMaxSize}`);
    blockStarts.push(position);
    position += 4 + size + checksumBytes;
  }
  // Anything after the end mark (another frame, skippable frames) is left to the streaming path.
  if (position + 4 + (frame.contentChecksum ? 4 : 0) !== fileSize) return undefined;
  blockStarts.push(position);
  const blockCount = blockStarts.length - 1;

  const decode = async (index: number): Promise<Buffer> => {
    const compressed = await readExactly(handle, blockStarts[index]!, blockStarts[index + 1]! - blockStarts[index]!);
    const parser = new Lz4FrameParser();
    parser.append(header);
    parser.append(compressed);
    return parser.next() ?? Buffer.alloc(0);
  };
  const lastSize = blockCount === 0 ? 0 : (await decode(blockCount - 1)).length;
  if (BigInt(Math.max(0, blockCount - 1) * frame.blockMaxSize + lastSize) !== frame.contentSize) return undefined;

  return {
    sizeBytes: Number(frame.contentSize),
    async blockAt(wanted) {
      const index = Math.floor(wanted / frame.blockMaxSize);
      const bytes = await decode(index);
      const expected = index === blockCount - 1 ? lastSize : frame.blockMaxSize;
      if (bytes.length !== expected) throw corrupt(path, `block ${index} decodes to ${bytes.length} bytes, not ${expected}`);
      return { start: index * frame.blockMaxSize, bytes };
    },
  };
}

/**
 * Any other LZ4 file (linked blocks, no content size, several frames): decoded from the start
 * through the streaming parser, one block at a time; a read behind the current block starts over.
 * The size is learnt by one pass to the end.
 */
async function streamedBlocks(handle: FileHandle, fileSize: number): Promise<BlockSource> {
  let parser = new Lz4FrameParser();
  let fileOffset = 0;
  let current: { start: number; bytes: Buffer } = { start: 0, bytes: Buffer.alloc(0) };
  const restart = (): void => {
    parser = new Lz4FrameParser();
    fileOffset = 0;
    current = { start: 0, bytes: Buffer.alloc(0) };
  };
  /** The next decoded block, or undefined at the end of the file. */
  const advance = async (): Promise<boolean> => {
    for (;;) {
      const block = parser.next();
      if (block) {
        current = { start: current.start + current.bytes.length, bytes: block };
        return true;
      }
      if (fileOffset >= fileSize) {
        parser.finish();
        return false;
      }
      const chunk = await readExactly(handle, fileOffset, Math.min(STREAM_CHUNK, fileSize - fileOffset));
      fileOffset += chunk.length;
      parser.append(chunk);
    }
  };
  while (await advance());
  const sizeBytes = current.start + current.bytes.length;
  restart();
  return {
    sizeBytes,
    async blockAt(wanted) {
      if (wanted < current.start) restart();
      while (wanted >= current.start + current.bytes.length) {
        if (!(await advance())) throw new Error(`position ${wanted} is past the end of the decoded image`);
      }
      return current;
    },
  };
}

/**
 * Opens the `.lz4` at `path` as a disk image read in place. Memory holds at most a few decoded
 * blocks (4 MiB each in brl's images) and the block index, whatever the image size.
 */
export async function openLz4DiskImage(path: string, handle: FileHandle): Promise<OpenedDiskImage> {
  const fileSize = (await handle.stat()).size;
  const flags = (await readExactly(handle, 4, 1))[0] ?? 0;
  const header = await readExactly(handle, 0, HEADER_BYTES + (flags & FLAG_CONTENT_SIZE ? 8 : 0));
  // The streaming parser checks the header (version, flags, checksum) and describes the frame.
  const headerParser = new Lz4FrameParser();
  headerParser.append(header);
  headerParser.next();
  const frame = headerParser.frame;
  if (!frame) throw corrupt(path, 'the frame header is cut short');
  const blocks = (frame.independent && frame.contentSize !== undefined ? await indexedBlocks(handle, path, fileSize, header, frame) : undefined) ??
    await streamedBlocks(handle, fileSize);

  const cache = new Map<number, Buffer>();
  const blockAt = async (position: number): Promise<{ start: number; bytes: Buffer }> => {
    for (const [start, bytes] of cache) {
      if (position >= start && position < start + bytes.length) {
        cache.delete(start);
        cache.set(start, bytes);
        return { start, bytes };
      }
    }
    const block = await blocks.blockAt(position);
    cache.set(block.start, block.bytes);
    if (cache.size > CACHED_BLOCKS) cache.delete(cache.keys().next().value!);
    return block;
  };
  return {
    name: path,
    sizeBytes: blocks.sizeBytes,
    format: 'lz4',
    async read(position, length) {
      const end = Math.min(position + length, blocks.sizeBytes);
      const out = Buffer.alloc(Math.max(0, end - position));
      for (let at = position; at < end;) {
        const block = await blockAt(at);
        const copied = block.bytes.copy(out, at - position, at - block.start, Math.min(block.bytes.length, end - block.start));
        at += copied;
      }
      return out;
    },
    close: () => handle.close(),
  };
}
