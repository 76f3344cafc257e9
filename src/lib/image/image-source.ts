// Opens a disk image for reading: raw as is, `.lz4` (detected by its magic) decoded into a sparse temp file
// (`openImage`, for whole-image checks) or read in place (`openDiskImage`).
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BrlError, ExitCode, fileError } from '../core/errors.ts';
import { diskSizeBytes } from './gpt.ts';
import { handleReader, type OpenedDiskImage } from './image-reader.ts';
import { openLz4DiskImage } from './lz4-reader.ts';
import { createLz4Decoder } from './lz4.ts';
import { SparseFileWriter } from './sparse.ts';

export interface ImageSource {
  /** The image as given. */
  path: string;
  /** A raw disk image to read from (the input itself, or the decoded temp copy). */
  rawPath: string;
  format: 'raw' | 'lz4';
  /** Removes the temp copy, if any. */
  close(): Promise<void>;
}

const LZ4_FRAME_MAGIC = 0x184d2204;

async function readMagic(path: string): Promise<number | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw fileError(error, path) ?? error;
  }
  try {
    if ((await handle.stat()).isDirectory()) {
      throw new BrlError(`${path} is a directory, not a disk image`, { exitCode: ExitCode.badInput, code: 'IS_A_DIRECTORY' });
    }
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    return bytesRead === 4 ? head.readUInt32LE(0) : undefined;
  } finally {
    await handle.close();
  }
}

export async function openImage(path: string): Promise<ImageSource> {
  if ((await readMagic(path)) !== LZ4_FRAME_MAGIC) return { path, rawPath: path, format: 'raw', close: async () => undefined };
  const dir = await mkdtemp(join(tmpdir(), 'brl-image-'));
  const rawPath = join(dir, basename(path).replace(/\.lz4$/, '') || 'disk.img');
  try {
    await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), createLz4Decoder(), new SparseFileWriter(rawPath));
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return { path, rawPath, format: 'lz4', close: () => rm(dir, { recursive: true, force: true }) };
}

/** Opens a raw disk image, a block device or an `.img.lz4` (read in place, nothing decoded to disk) for reading at any position. */
export async function openDiskImage(path: string): Promise<OpenedDiskImage> {
  const lz4 = (await readMagic(path)) === LZ4_FRAME_MAGIC;
  const handle = await open(path, 'r');
  if (lz4) {
    try {
      return await openLz4DiskImage(path, handle);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }
  const reader = handleReader(handle);
  return { name: path, sizeBytes: Number(await diskSizeBytes(path)), format: 'raw', read: reader.read, close: () => handle.close() };
}
