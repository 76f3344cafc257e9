// Disk images from a partition plan: a sparse file, filesystem images at their offsets, GPT last.
import { execFile } from 'node:child_process';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import { BrlError, ExitCode } from '../core/errors.ts';
import { writeGpt, writeProtectiveMbr, type GptTable } from '../image/gpt.ts';
import type { IdContext } from '../image/ids.ts';
import { gptForPlan, type DiskPlan, type PartitionKey } from '../image/layout.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const BLOCK = 4096;
const CHUNK = 4 * MiB;
const zeroBlock = Buffer.alloc(BLOCK);

/** A byte range of a disk file that holds data; everything outside the extents is zero. */
export interface Extent {
  offset: number;
  length: number;
}

/**
 * Copies `source` into `target` at `offset` with positioned writes, skipping all-zero 4 KiB
 * blocks so the target stays sparse; appends what it wrote to `extents`. Memory is one 4 MiB
 * buffer whatever the size.
 */
export async function copySparse(source: string, target: FileHandle, offset: number, extents: Extent[] = []): Promise<number> {
  const sizeBytes = (await stat(source)).size;
  const input = await open(source, 'r');
  const buffer = Buffer.allocUnsafe(CHUNK);
  try {
    for (const mapped of await mappedExtents(source, sizeBytes)) {
      await copyRange(input, mapped, buffer, target, offset, extents);
    }
  } finally {
    await input.close();
  }
  return sizeBytes;
}

/** Copies one mapped range of the source, writing only its runs of non-zero 4 KiB blocks. */
async function copyRange(input: FileHandle, range: Extent, buffer: Buffer, target: FileHandle, offset: number, extents: Extent[]): Promise<void> {
  let position = range.offset;
  const end = range.offset + range.length;
  while (position < end) {
    const { bytesRead } = await input.read(buffer, 0, Math.min(CHUNK, end - position), position);
    if (bytesRead === 0) break;
    // The pass past the end of the chunk flushes its last run.
    let runStart = -1;
    for (let at = 0; at < bytesRead + BLOCK; at += BLOCK) {
      const blockEnd = Math.min(at + BLOCK, bytesRead);
      const zero = at >= bytesRead || buffer.subarray(at, blockEnd).equals(zeroBlock.subarray(0, blockEnd - at));
      if (!zero && runStart < 0) runStart = at;
      if (zero && runStart >= 0) {
        const runEnd = Math.min(at, bytesRead);
        await writeFully(target, buffer.subarray(runStart, runEnd), offset + position + runStart);
        extents.push({ offset: offset + position + runStart, length: runEnd - runStart });
        runStart = -1;
      }
    }
    position += bytesRead;
  }
}

/**
 * The ranges of `path` that hold data, from the filesystem's extent map (`filefrag`, FIEMAP):
 * reading a hole back makes the kernel fill page cache with zeros, which costs more than
 * everything else in a disk build. Unwritten (preallocated) extents read as zeros and are
 * skipped. Without filefrag the whole file is one range.
 */
export async function mappedExtents(path: string, sizeBytes: number): Promise<Extent[]> {
  if (sizeBytes === 0) return [];
  let stdout: string;
  try {
    ({ stdout } = await run('filefrag', ['-v', path], { env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 64 * MiB }));
  } catch {
    return [{ offset: 0, length: sizeBytes }];
  }
  const blockSize = Number(/blocks of (\d+) bytes/.exec(stdout)?.[1]);
  if (!Number.isInteger(blockSize) || blockSize <= 0) return [{ offset: 0, length: sizeBytes }];
  const extents: Extent[] = [];
  for (const line of stdout.split('\n')) {
    const match = /^\s*\d+:\s+(\d+)\.\.\s*(\d+):/.exec(line);
    if (!match || /\bunwritten\b/.test(line)) continue;
    const start = Number(match[1]) * blockSize;
    const end = Math.min((Number(match[2]) + 1) * blockSize, sizeBytes);
    if (end > start) extents.push({ offset: start, length: end - start });
  }
  return mergeExtents(extents);
}

async function writeFully(target: FileHandle, data: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < data.length) {
    const { bytesWritten } = await target.write(data, written, data.length - written, position + written);
    written += bytesWritten;
  }
}

export interface WrittenDisk {
  table: GptTable;
  sizeBytes: number;
  /** Sorted, merged ranges holding data (the GPT MiBs at both ends included). */
  extents: Extent[];
}

/**
 * Writes a disk of `plan.sizeMiB` at `path`: each filesystem image in `contents` at its
 * partition's offset (failing when one does not fit), then the protective MBR (with
 * `mbrBootCode` as its first 440 bytes when given) and both GPTs.
 */
export async function writeDisk(
  path: string, plan: DiskPlan, ids: IdContext, contents: Partial<Record<PartitionKey, string>>, mbrBootCode?: Uint8Array,
): Promise<WrittenDisk> {
  const table = gptForPlan(plan, ids);
  const sizeBytes = plan.sizeMiB * MiB;
  const extents: Extent[] = [{ offset: 0, length: MiB }, { offset: sizeBytes - MiB, length: MiB }];
  const handle = await open(path, 'w+');
  try {
    await handle.truncate(sizeBytes);
    for (const partition of plan.partitions) {
      const source = contents[partition.key];
      if (source === undefined) continue;
      const size = (await stat(source)).size;
      const capacity = partition.sizeMiB * MiB;
      if (size > capacity) {
        throw new BrlError(`${partition.key} holds ${partition.sizeMiB} MiB but its image is ${(size / MiB).toFixed(1)} MiB (${((size - capacity) / MiB).toFixed(1)} MiB too big)`, {
          hint: 'raise image-layout.os-image-size-gib or install fewer packages',
          exitCode: ExitCode.buildFailed,
          code: 'PARTITION_TOO_SMALL',
        });
      }
      await copySparse(source, handle, partition.startMiB * MiB, extents);
    }
    if (mbrBootCode !== undefined) await writeFully(handle, Buffer.from(mbrBootCode), 0);
    await writeProtectiveMbr(handle, table);
    await writeGpt(handle, table);
  } finally {
    await handle.close();
  }
  return { table, sizeBytes, extents: mergeExtents(extents) };
}

export function mergeExtents(extents: readonly Extent[]): Extent[] {
  const sorted = [...extents].sort((a, b) => a.offset - b.offset);
  const merged: Extent[] = [];
  for (const extent of sorted) {
    const last = merged.at(-1);
    if (last !== undefined && extent.offset <= last.offset + last.length) {
      last.length = Math.max(last.length, extent.offset + extent.length - last.offset);
    } else {
      merged.push({ ...extent });
    }
  }
  return merged;
}

/**
 * The disk's bytes as a stream: extents read from the file, the gaps produced as zeros in
 * memory. Reading holes back from a sparse file costs the kernel far more than this does.
 */
export async function* diskBytes(path: string, disk: Pick<WrittenDisk, 'sizeBytes' | 'extents'>): AsyncGenerator<Buffer> {
  const zeros = Buffer.alloc(CHUNK);
  const handle = await open(path, 'r');
  try {
    let position = 0;
    const emitZeros = function* (until: number): Generator<Buffer> {
      while (position < until) {
        const length = Math.min(CHUNK, until - position);
        position += length;
        yield zeros.subarray(0, length);
      }
    };
    for (const extent of disk.extents) {
      yield* emitZeros(extent.offset);
      const end = extent.offset + extent.length;
      while (position < end) {
        const buffer = Buffer.allocUnsafe(Math.min(CHUNK, end - position));
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
        if (bytesRead === 0) throw new Error(`${path} ends at ${position}, before its extent ends at ${end}`);
        position += bytesRead;
        yield buffer.subarray(0, bytesRead);
      }
    }
    yield* emitZeros(disk.sizeBytes);
  } finally {
    await handle.close();
  }
}
