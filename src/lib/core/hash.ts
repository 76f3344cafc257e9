// Streamed digests of files and byte streams: memory stays flat whatever the size.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export interface Digest {
  /** The digest in lower-case hex. */
  hex: string;
  /** How many bytes went into it. */
  bytes: number;
}

export interface HashStreamOptions {
  /**
   * Stop reading once more than this many bytes have arrived, so an oversized source costs at most
   * one chunk more than expected; `bytes` then exceeds the limit and the digest covers what was read.
   */
  stopAfterBytes?: number;
}

/** Hashes `chunks` with `algorithm` (any name node:crypto knows). Ending early releases the source. */
export async function hashStream(chunks: AsyncIterable<Uint8Array>, algorithm = 'sha256', options: HashStreamOptions = {}): Promise<Digest> {
  const hash = createHash(algorithm);
  let bytes = 0;
  for await (const chunk of chunks) {
    hash.update(chunk);
    bytes += chunk.length;
    if (options.stopAfterBytes !== undefined && bytes > options.stopAfterBytes) break;
  }
  return { hex: hash.digest('hex'), bytes };
}

/** Hashes the file at `path`; read errors (ENOENT and the like) reach the caller unchanged. */
export function hashFile(path: string, algorithm = 'sha256'): Promise<Digest> {
  // 1 MiB reads: fewer syscalls and hash updates than the 64 KiB default on image-sized files.
  return hashStream(createReadStream(path, { highWaterMark: 1 << 20 }), algorithm);
}
