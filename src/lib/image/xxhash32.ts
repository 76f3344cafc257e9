// Streaming xxHash32, the checksum of the LZ4 frame format (header, block and content checksums).

const PRIME1 = 2654435761 | 0;
const PRIME2 = 2246822519 | 0;
const PRIME3 = 3266489917 | 0;
const PRIME4 = 668265263;
const PRIME5 = 374761393;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function rotl(value: number, bits: number): number {
  return (value << bits) | (value >>> (32 - bits));
}

function read32(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);
}

export class XxHash32 {
  #v1: number;
  #v2: number;
  #v3: number;
  #v4: number;
  readonly #seed: number;
  #totalLength = 0;
  readonly #pending = new Uint8Array(16);
  #pendingLength = 0;

  constructor(seed = 0) {
    this.#seed = seed | 0;
    this.#v1 = (this.#seed + PRIME1 + PRIME2) | 0;
    this.#v2 = (this.#seed + PRIME2) | 0;
    this.#v3 = this.#seed;
    this.#v4 = (this.#seed - PRIME1) | 0;
  }

  update(input: Uint8Array): this {
    const length = input.length;
    this.#totalLength += length;
    let at = 0;
    if (this.#pendingLength > 0) {
      const take = Math.min(16 - this.#pendingLength, length);
      this.#pending.set(input.subarray(0, take), this.#pendingLength);
      this.#pendingLength += take;
      at = take;
      if (this.#pendingLength < 16) return this;
      this.#stripes(this.#pending, 0, 16);
      this.#pendingLength = 0;
    }
    const end = at + ((length - at) & ~15);
    if (end > at) this.#stripes(input, at, end);
    if (end < length) {
      this.#pending.set(input.subarray(end), 0);
      this.#pendingLength = length - end;
    }
    return this;
  }

  #stripes(bytes: Uint8Array, start: number, end: number): void {
    let v1 = this.#v1;
    let v2 = this.#v2;
    let v3 = this.#v3;
    let v4 = this.#v4;
    if (LITTLE_ENDIAN && (bytes.byteOffset + start) % 4 === 0) {
      // Aligned input (the decoder's fresh output buffers): whole-word loads are ~3× faster.
      const words = new Int32Array(bytes.buffer, bytes.byteOffset + start, (end - start) >>> 2);
      for (let at = 0; at < words.length; at += 4) {
        v1 = Math.imul(rotl((v1 + Math.imul(words[at]!, PRIME2)) | 0, 13), PRIME1);
        v2 = Math.imul(rotl((v2 + Math.imul(words[at + 1]!, PRIME2)) | 0, 13), PRIME1);
        v3 = Math.imul(rotl((v3 + Math.imul(words[at + 2]!, PRIME2)) | 0, 13), PRIME1);
        v4 = Math.imul(rotl((v4 + Math.imul(words[at + 3]!, PRIME2)) | 0, 13), PRIME1);
      }
      this.#v1 = v1;
      this.#v2 = v2;
      this.#v3 = v3;
      this.#v4 = v4;
      return;
    }
    for (let at = start; at < end; at += 16) {
      v1 = Math.imul(rotl((v1 + Math.imul(read32(bytes, at), PRIME2)) | 0, 13), PRIME1);
      v2 = Math.imul(rotl((v2 + Math.imul(read32(bytes, at + 4), PRIME2)) | 0, 13), PRIME1);
      v3 = Math.imul(rotl((v3 + Math.imul(read32(bytes, at + 8), PRIME2)) | 0, 13), PRIME1);
      v4 = Math.imul(rotl((v4 + Math.imul(read32(bytes, at + 12), PRIME2)) | 0, 13), PRIME1);
    }
    this.#v1 = v1;
    this.#v2 = v2;
    this.#v3 = v3;
    this.#v4 = v4;
  }

  /** The 32-bit digest as an unsigned number. */
  digest(): number {
    let h = this.#totalLength >= 16
      ? (rotl(this.#v1, 1) + rotl(this.#v2, 7) + rotl(this.#v3, 12) + rotl(this.#v4, 18)) | 0
      : (this.#seed + PRIME5) | 0;
    h = (h + this.#totalLength) | 0;
    const rest = this.#pending;
    let at = 0;
    for (; at + 4 <= this.#pendingLength; at += 4) h = Math.imul(rotl((h + Math.imul(read32(rest, at), PRIME3)) | 0, 17), PRIME4);
    for (; at < this.#pendingLength; at++) h = Math.imul(rotl((h + Math.imul(rest[at]!, PRIME5)) | 0, 11), PRIME1);
    h ^= h >>> 15;
    h = Math.imul(h, PRIME2);
    h ^= h >>> 13;
    h = Math.imul(h, PRIME3);
    h ^= h >>> 16;
    return h >>> 0;
  }
}

export function xxhash32(input: Uint8Array, seed = 0): number {
  return new XxHash32(seed).update(input).digest();
}
