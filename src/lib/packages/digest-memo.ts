// File digests remembered by size, mtime, ctime and inode, so a no-op build re-hashes only what changed.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../core/fs.ts';
import { hashFile } from '../core/hash.ts';
import { buildDir } from '../core/paths.ts';

interface MemoEntry {
  /** `size:mtimeNs:ctimeNs:ino`; ctime changes on every write and cannot be set back, unlike mtime. */
  stamp: string;
  sha256: string;
}

export class FileDigestMemo {
  readonly #entries: Map<string, MemoEntry>;
  #changed = false;

  private constructor(entries: Map<string, MemoEntry>) {
    this.#entries = entries;
  }

  static empty(): FileDigestMemo {
    return new FileDigestMemo(new Map());
  }

  /** The project's memo; a missing or unreadable file just means every digest is computed again. */
  static async load(projectDir: string): Promise<FileDigestMemo> {
    try {
      const parsed = JSON.parse(await readFile(memoPath(projectDir), 'utf8')) as Record<string, MemoEntry>;
      return new FileDigestMemo(new Map(Object.entries(parsed)));
    } catch {
      return FileDigestMemo.empty();
    }
  }

  async sha256(path: string): Promise<string> {
    const info = await stat(path, { bigint: true });
    const stamp = `${info.size}:${info.mtimeNs}:${info.ctimeNs}:${info.ino}`;
    const known = this.#entries.get(path);
    if (known?.stamp === stamp) return known.sha256;
    const { hex } = await hashFile(path);
    this.#entries.set(path, { stamp, sha256: hex });
    this.#changed = true;
    return hex;
  }

  async save(projectDir: string): Promise<void> {
    if (!this.#changed) return;
    await writeJsonAtomic(memoPath(projectDir), Object.fromEntries(this.#entries));
    this.#changed = false;
  }
}

function memoPath(projectDir: string): string {
  return join(buildDir(projectDir), 'state', 'file-digests.json');
}
