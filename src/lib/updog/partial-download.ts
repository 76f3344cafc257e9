// Image bytes kept across updog runs, so a download that was given up (a stalled server, a reboot,
// a power cut) resumes where it stopped. The bytes go to `<sha256>.partial` as they arrive; every
// CHECKPOINT_BYTES they are flushed and `<sha256>.partial.json` records the length and SHA-256 of
// the durable prefix. A later run trusts only that prefix, and only once it hashes the same: after a
// power cut the file may hold less, or other bytes, than was written.
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rm, type FileHandle } from 'node:fs/promises';
import type { Hash } from 'node:crypto';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { errnoCode } from '../core/errors.ts';
import { writeFileAtomic } from '../core/fs.ts';

export const CHECKPOINT_BYTES = 8 * 1024 * 1024;

interface Checkpoint {
  length: number;
  sha256: string;
}

export class PartialDownload {
  readonly path: string;
  readonly #checkpointPath: string;
  readonly #handle: FileHandle;
  /** Bytes of a previous run this one starts from (0: from the beginning). */
  readonly keptBytes: number;
  #sinceCheckpoint = 0;
  #length: number;

  private constructor(path: string, handle: FileHandle, keptBytes: number) {
    this.path = path;
    this.#checkpointPath = `${path}.json`;
    this.#handle = handle;
    this.keptBytes = keptBytes;
    this.#length = keptBytes;
  }

  /**
   * Opens the kept bytes of the target with this SHA-256 and `length`: the recorded prefix if it
   * still hashes as recorded, else nothing (the file is emptied).
   */
  static async open(dir: string, sha256: string, length: number): Promise<PartialDownload> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, `${sha256}.partial`);
    const handle = await open(path, 'a+');
    let kept = 0;
    try {
      const checkpoint = await readCheckpoint(`${path}.json`);
      if (checkpoint && checkpoint.length <= length && checkpoint.length <= (await handle.stat()).size
        && (await prefixSha256(path, checkpoint.length)) === checkpoint.sha256) {
        kept = checkpoint.length;
      }
      // Anything past the durable prefix is dropped; appends continue from it.
      await handle.truncate(kept);
    } catch (error) {
      await handle.close();
      throw error;
    }
    return new PartialDownload(path, handle, kept);
  }

  /** The kept prefix, read back from disk. */
  replay(): AsyncIterable<Buffer> {
    if (this.keptBytes === 0) return (async function* () {})();
    return createReadStream(this.path, { start: 0, end: this.keptBytes - 1, highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>;
  }

  /** Appends new bytes; `hashSoFar` covers every byte up to and including `chunk`. */
  async append(chunk: Buffer, hashSoFar: Hash): Promise<void> {
    await this.#handle.write(chunk);
    this.#length += chunk.length;
    this.#sinceCheckpoint += chunk.length;
    if (this.#sinceCheckpoint >= CHECKPOINT_BYTES) await this.#checkpoint(hashSoFar);
  }

  /**
   * Ends this run's use. `keep` (a transport failure) records everything received so far as the
   * durable prefix for the next run; otherwise the bytes go.
   */
  async close(keep: boolean, hashSoFar: Hash): Promise<void> {
    if (keep && this.#sinceCheckpoint > 0) await this.#checkpoint(hashSoFar);
    await this.#handle.close();
    if (!keep) await this.discard();
  }

  async #checkpoint(hashSoFar: Hash): Promise<void> {
    this.#sinceCheckpoint = 0;
    await this.#handle.datasync();
    await writeFileAtomic(this.#checkpointPath, JSON.stringify({ length: this.#length, sha256: hashSoFar.copy().digest('hex') } satisfies Checkpoint));
  }

  async discard(): Promise<void> {
    await rm(this.#checkpointPath, { force: true });
    await rm(this.path, { force: true });
  }
}

async function readCheckpoint(path: string): Promise<Checkpoint | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<Checkpoint>;
    return Number.isSafeInteger(parsed.length) && typeof parsed.sha256 === 'string' ? { length: parsed.length!, sha256: parsed.sha256 } : undefined;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || error instanceof SyntaxError) return undefined;
    throw error;
  }
}

async function prefixSha256(path: string, length: number): Promise<string> {
  const hash = createHash('sha256');
  if (length > 0) for await (const chunk of createReadStream(path, { start: 0, end: length - 1 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Removes kept downloads of targets other than `keep` (sha256s), e.g. of a superseded update. */
export async function prunePartialDownloads(dir: string, keep: readonly string[]): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw error;
  }
  const wanted = new Set(keep.flatMap((sha256) => [`${sha256}.partial`, `${sha256}.partial.json`]));
  await Promise.all(names.filter((name) => !wanted.has(name)).map((name) => rm(join(dir, name), { force: true })));
}
