// A Writable that writes a disk image sparsely: all-zero 4 KiB blocks become holes.
import { open, type FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

const BLOCK = 4096;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

function isZero(block: Buffer): boolean {
  return block.length === BLOCK ? block.equals(ZERO_BLOCK) : block.every((byte) => byte === 0);
}

/**
 * Writes its input to `path` (created or truncated) at increasing offsets, skipping all-zero
 * 4 KiB blocks, and sets the final size on finish, so a decompressed raw disk takes only the
 * space of its data. Memory: one partial block.
 */
export class SparseFileWriter extends Writable {
  readonly #path: string;
  #handle: FileHandle | undefined;
  #position = 0;
  #partial: Buffer = Buffer.alloc(0);

  constructor(path: string) {
    super({ highWaterMark: 4 * 1024 * 1024 });
    this.#path = path;
  }

  /** Bytes written so far (the file's size once finished). */
  get bytesWritten(): number {
    return this.#position + this.#partial.length;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    open(this.#path, 'w').then((handle) => {
      this.#handle = handle;
      callback();
    }, callback);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#writeData(chunk).then(() => callback(), callback);
  }

  async #writeData(chunk: Buffer): Promise<void> {
    let data = chunk;
    if (this.#partial.length > 0) {
      data = Buffer.concat([this.#partial, chunk]);
      this.#partial = Buffer.alloc(0);
    }
    const whole = data.length - (data.length % BLOCK);
    let runStart = -1;
    for (let at = 0; at <= whole; at += BLOCK) {
      const zero = at === whole || isZero(data.subarray(at, at + BLOCK));
      if (!zero && runStart < 0) runStart = at;
      if (zero && runStart >= 0) {
        await this.#handle!.write(data, runStart, at - runStart, this.#position + runStart);
        runStart = -1;
      }
    }
    this.#position += whole;
    if (whole < data.length) this.#partial = Buffer.from(data.subarray(whole));
  }

  override _final(callback: (error?: Error | null) => void): void {
    const finish = async (): Promise<void> => {
      if (this.#partial.length > 0 && !isZero(this.#partial)) await this.#handle!.write(this.#partial, 0, this.#partial.length, this.#position);
      this.#position += this.#partial.length;
      this.#partial = Buffer.alloc(0);
      await this.#handle!.truncate(this.#position);
    };
    finish().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const handle = this.#handle;
    this.#handle = undefined;
    if (!handle) {
      callback(error);
      return;
    }
    handle.close().then(() => callback(error), (closeError: Error) => callback(error ?? closeError));
  }
}
