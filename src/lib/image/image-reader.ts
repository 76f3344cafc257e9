// Random access to the bytes of a disk or filesystem image, whatever holds them (a file, a block device, an `.lz4`).
import type { FileHandle } from 'node:fs/promises';

/** Reads bytes at byte positions. */
export interface BlockReader {
  /** `length` bytes from `position`; fewer only where the image ends. */
  read(position: number, length: number): Promise<Buffer>;
}

/** A `BlockReader` over an open file or block device. */
export function handleReader(handle: FileHandle): BlockReader {
  return {
    async read(position, length) {
      const buffer = Buffer.alloc(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return filled === length ? buffer : buffer.subarray(0, filled);
    },
  };
}

/** A `BlockReader` over bytes already in memory (a decoded update image). */
export function bufferReader(bytes: Buffer): BlockReader {
  return { read: async (position, length) => bytes.subarray(position, position + length) };
}

/** A whole disk image. */
export interface DiskReader extends BlockReader {
  /** The image as given, for messages. */
  readonly name: string;
  readonly sizeBytes: number;
}

/** A disk image opened for reading; `close` releases what it holds. */
export interface OpenedDiskImage extends DiskReader {
  format: 'raw' | 'lz4';
  close(): Promise<void>;
}
