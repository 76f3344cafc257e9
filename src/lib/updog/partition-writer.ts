// Writes decoded image data into one partition of the disk at increasing offsets, never past its end.
import type { FileHandle } from 'node:fs/promises';
import { BrlError, ExitCode } from '../core/errors.ts';

export class PartitionWriter {
  readonly #handle: FileHandle;
  readonly #offset: number;
  readonly #size: number;
  readonly #label: string;
  #written = 0;

  /** `offset` and `size` in bytes of the partition on the disk behind `handle`. */
  constructor(handle: FileHandle, offset: number, size: number, label: string) {
    this.#handle = handle;
    this.#offset = offset;
    this.#size = size;
    this.#label = label;
  }

  get bytesWritten(): number {
    return this.#written;
  }

  /** Writes `chunk` next; resolves once it is in the page cache, so the caller may reuse it. */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.#written + chunk.length > this.#size) {
      throw new BrlError(`the image for ${this.#label} is larger than the partition (${this.#size} bytes); this disk is too small for the update`, {
        hint: 'the update was built for a larger os-image-size-gib; nothing was marked bootable',
        exitCode: ExitCode.conflict,
        code: 'PARTITION_TOO_SMALL',
      });
    }
    const position = this.#offset + this.#written;
    this.#written += chunk.length;
    await writeFully(this.#handle, chunk, position);
  }

  /** Flushes the partition's data to the device. */
  async finish(): Promise<void> {
    await this.#handle.datasync();
  }
}

async function writeFully(handle: FileHandle, chunk: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}

/** The content size an LZ4 frame header declares (FLG bit 3), if its first bytes carry one. */
export function lz4FrameContentSize(header: Buffer): number | undefined {
  if (header.length < 14 || header.readUInt32LE(0) !== 0x184d2204) return undefined;
  const flags = header[4]!;
  if ((flags & 0x08) === 0) return undefined;
  return Number(header.readBigUInt64LE(6));
}
