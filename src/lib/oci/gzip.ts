// gzip whose bytes depend only on its input: brl writes the header itself (no name, mtime 0, OS 255)
// around zlib's raw deflate, so neither the time nor the build machine's OS shows in a layer digest.
import { Transform } from 'node:stream';
import { constants, crc32, createDeflateRaw } from 'node:zlib';

/** ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=2 (maximum compression) OS=255 (unknown), as Go's compress/gzip writes it. */
export const gzipHeader: Buffer = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xff]);

/**
 * The stages of one gzip member at level 9, for `pipeline(source, ...reproducibleGzip(), sink)`:
 * the CRC-32 and length of the input, zlib's raw deflate, then header and trailer around its output.
 * Each stage is an ordinary stream, so backpressure holds and memory stays flat.
 */
export function reproducibleGzip(): [Transform, Transform, Transform] {
  let checksum = 0;
  let inputBytes = 0;
  const measure = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      checksum = crc32(chunk, checksum);
      inputBytes += chunk.length;
      callback(null, chunk);
    },
  });
  const deflate = createDeflateRaw({ level: constants.Z_BEST_COMPRESSION, memLevel: 9 });
  let headerSent = false;
  const frame = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (!headerSent) {
        headerSent = true;
        this.push(gzipHeader);
      }
      callback(null, chunk);
    },
    flush(callback) {
      if (!headerSent) this.push(gzipHeader);
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(checksum >>> 0, 0);
      // ISIZE is the input length modulo 2^32 (RFC 1952).
      trailer.writeUInt32LE(inputBytes % 2 ** 32, 4);
      callback(null, trailer);
    },
  });
  return [measure, deflate, frame];
}
