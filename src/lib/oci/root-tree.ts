// The root file system of an image, assembled from debs and brl's own files: entry metadata in memory,
// file bytes staged on disk (one file per distinct content), so memory grows with the number of
// entries and never with their size.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { forEachDataEntry, type DebControl } from './deb.ts';

export type TreeEntryType = 'file' | 'directory' | 'symlink';

export interface TreeEntry {
  /** Relative to the root, no leading `/` or `./`, no trailing `/`: `usr/bin/bash`. */
  path: string;
  type: TreeEntryType;
  mode: number;
  uid: number;
  gid: number;
  /** Files: the staged bytes; hard links of one deb share it. */
  staged?: StagedContent;
  /** Symlinks: the target exactly as shipped. */
  target?: string;
  /** Which deb (or `brl`) the entry came from, for conflict messages. */
  origin: string;
  /** A directory no deb listed, made because something lies below it. */
  implied?: boolean;
}

export interface StagedContent {
  file: string;
  size: number;
  sha256: string;
}

/** Debian 12 still ships /bin, /sbin, /lib and /lib64; a merged-/usr system has them as links into /usr. */
export const usrMergedDirs = ['bin', 'lib', 'lib64', 'sbin'] as const;

export class RootTree {
  readonly #entries = new Map<string, TreeEntry>();
  readonly #stagingDir: string;
  #staged = 0;

  constructor(stagingDir: string) {
    this.#stagingDir = stagingDir;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(path: string): TreeEntry | undefined {
    return this.#entries.get(path);
  }

  /** Every entry, parents before children, in byte order of their paths: the layer's order. */
  sorted(): TreeEntry[] {
    return [...this.#entries.values()].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  }

  /**
   * Adds a deb's data: `/bin/x` lands at `usr/bin/x` (the merged-/usr layout), modes and numeric
   * owners as the deb ships them, conffiles hashed with md5 for the dpkg status file. A path two
   * debs ship with different content or type is an error; identical duplicates are accepted.
   */
  async addDeb(debPath: string, label: string, control: DebControl): Promise<Map<string, string>> {
    const conffiles = new Set(control.conffiles.map((path) => path.replace(/^\//, '')));
    const conffileMd5 = new Map<string, string>();
    const hardLinkSources = new Map<string, TreeEntry>();
    await forEachDataEntry(debPath, async (entry) => {
      const shippedPath = normalizeEntryPath(entry.header.name, label);
      if (shippedPath === '') {
        entry.resume();
        return;
      }
      const path = mergeUsr(shippedPath);
      const header = entry.header;
      const base = { path, mode: (header.mode ?? 0) & 0o7777, uid: header.uid ?? 0, gid: header.gid ?? 0, origin: label };
      switch (header.type) {
        case 'directory':
          entry.resume();
          this.#addDirectory({ ...base, type: 'directory' });
          return;
        case 'symlink':
          entry.resume();
          if (!header.linkname) throw badEntry(label, shippedPath, 'is a symbolic link without a target');
          // A link's own mode means nothing on Linux, which shows 0777.
          this.#put({ ...base, mode: 0o777, type: 'symlink', target: header.linkname });
          return;
        case 'link': {
          entry.resume();
          const linked = mergeUsr(normalizeEntryPath(header.linkname ?? '', label));
          const source = hardLinkSources.get(linked);
          if (source === undefined) throw badEntry(label, shippedPath, `is a hard link to ${header.linkname ?? '(nothing)'}, which the deb did not ship before it`);
          // One inode: mode and owner are the linked file's.
          this.#put({ ...base, mode: source.mode, uid: source.uid, gid: source.gid, type: 'file', ...(source.staged === undefined ? {} : { staged: source.staged }) });
          return;
        }
        case 'file':
        case 'contiguous-file': {
          const staged = await this.#stage(entry, conffiles.has(shippedPath) ? (md5) => conffileMd5.set(`/${shippedPath}`, md5) : undefined);
          const file: TreeEntry = { ...base, type: 'file', staged };
          hardLinkSources.set(path, file);
          this.#put(file);
          return;
        }
        default:
          entry.resume();
          throw badEntry(label, shippedPath, `is a ${header.type ?? 'special file'}; an image layer takes files, directories and links only`);
      }
    });
    return conffileMd5;
  }

  /** A file brl adds (replacing whatever a deb shipped there): owned by root. */
  async addFile(path: string, mode: number, content: AsyncIterable<Uint8Array> | Buffer): Promise<void> {
    const relative = imageRelative(path);
    const staged = await this.#stage(content);
    this.#entries.delete(relative);
    this.#put({ path: relative, type: 'file', mode, uid: 0, gid: 0, staged, origin: 'brl' });
  }

  addSymlink(path: string, target: string): void {
    const relative = imageRelative(path);
    this.#entries.delete(relative);
    this.#put({ path: relative, type: 'symlink', mode: 0o777, uid: 0, gid: 0, target, origin: 'brl' });
  }

  /** The top-level links of the merged-/usr layout (`bin -> usr/bin`, …), as debootstrap makes them. */
  addUsrMergeLinks(): void {
    for (const dir of usrMergedDirs) this.#put({ path: dir, type: 'symlink', mode: 0o777, uid: 0, gid: 0, target: `usr/${dir}`, origin: 'brl' });
  }

  /** Removes every entry matching one of `patterns` and everything below it (see `matchesDropPattern`). */
  drop(patterns: readonly string[]): number {
    let dropped = 0;
    for (const path of [...this.#entries.keys()]) {
      if (patterns.some((pattern) => matchesDropPattern(pattern, path))) {
        this.#entries.delete(path);
        dropped += 1;
      }
    }
    return dropped;
  }

  /** Content of a staged file, for `files` copied from inside the image. */
  read(path: string): AsyncIterable<Uint8Array> {
    const entry = this.#entries.get(imageRelative(path));
    if (entry?.staged === undefined) {
      throw new BrlError(`/${imageRelative(path)} is not a file in the image's debs`, { exitCode: ExitCode.badInput, code: 'IMAGE_PATH_MISSING' });
    }
    return createReadStream(entry.staged.file);
  }

  #addDirectory(entry: TreeEntry): void {
    const existing = this.#entries.get(entry.path);
    // Many debs ship the same directories: the first one's metadata stays, over an implied one's.
    if (existing?.type === 'directory' && existing.implied === true) this.#entries.set(entry.path, entry);
    else if (existing?.type !== 'directory') this.#put(entry);
  }

  #put(entry: TreeEntry): void {
    const existing = this.#entries.get(entry.path);
    if (existing !== undefined && !sameEntry(existing, entry)) {
      throw new BrlError(`/${entry.path} is shipped by both ${existing.origin} (${describe(existing)}) and ${entry.origin} (${describe(entry)})`, {
        hint: 'leave one of the packages out ([debian.exclude] in image.toml), or drop the path with drop-paths',
        exitCode: ExitCode.buildFailed,
        code: 'IMAGE_PATH_CONFLICT',
      });
    }
    if (existing !== undefined) return;
    // Parents a deb does not list still need entries, so the layer never implies a directory.
    const segments = entry.path.split('/');
    for (let depth = 1; depth < segments.length; depth += 1) {
      const parent = segments.slice(0, depth).join('/');
      const present = this.#entries.get(parent);
      if (present === undefined) this.#entries.set(parent, { path: parent, type: 'directory', mode: 0o755, uid: 0, gid: 0, origin: entry.origin, implied: true });
      else if (present.type !== 'directory') {
        throw new BrlError(`/${entry.path} (from ${entry.origin}) lies below /${parent}, which ${present.origin} ships as a ${present.type}`, {
          exitCode: ExitCode.buildFailed,
          code: 'IMAGE_PATH_CONFLICT',
        });
      }
    }
    this.#entries.set(entry.path, entry);
  }

  async #stage(content: AsyncIterable<Uint8Array> | Buffer, onMd5?: (md5: string) => void): Promise<StagedContent> {
    const file = join(this.#stagingDir, String(this.#staged++));
    const sha256 = createHash('sha256');
    const md5 = onMd5 === undefined ? undefined : createHash('md5');
    let size = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        sha256.update(chunk);
        md5?.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    });
    const source = Buffer.isBuffer(content) ? [content] : content;
    await pipeline(source, tap, createWriteStream(file));
    if (md5 !== undefined) onMd5?.(md5.digest('hex'));
    return { file, size, sha256: sha256.digest('hex') };
  }
}

/**
 * A tar entry name from a deb as a root-relative path ('' for the root itself). Absolute names,
 * `..` segments and whiteout names (`.wh.*`, which a layer reader would treat as deletions) are
 * refused: a deb never needs them, and an image must not be steered outside its root.
 */
export function normalizeEntryPath(name: string, origin: string): string {
  if (name.startsWith('/')) throw badEntry(origin, name, 'is an absolute path');
  const segments = name.split('/').filter((segment) => segment !== '' && segment !== '.');
  for (const segment of segments) {
    if (segment === '..') throw badEntry(origin, name, 'has a .. segment (path traversal)');
    if (segment.startsWith('.wh.')) throw badEntry(origin, name, 'is an OCI whiteout name');
    if (segment.includes('\0')) throw badEntry(origin, name, 'contains a NUL byte');
  }
  return segments.join('/');
}

/** `bin/x` → `usr/bin/x` for the directories merged-/usr moves; everything else unchanged. */
export function mergeUsr(path: string): string {
  const [top] = path.split('/', 1);
  return (usrMergedDirs as readonly string[]).includes(top ?? '') ? `usr/${path}` : path;
}

/**
 * `pattern` is an absolute image path whose segments may hold `*` (any characters but `/`); it
 * matches `path` (root-relative) when it matches `path` itself or one of its parents.
 */
export function matchesDropPattern(pattern: string, path: string): boolean {
  const patternSegments = pattern.split('/').slice(1);
  const pathSegments = path.split('/');
  if (patternSegments.length > pathSegments.length) return false;
  return patternSegments.every((segment, index) => globSegment(segment).test(pathSegments[index] as string));
}

function globSegment(segment: string): RegExp {
  return new RegExp(`^${segment.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`);
}

function imageRelative(path: string): string {
  return path.replace(/^\/+/, '');
}

function sameEntry(a: TreeEntry, b: TreeEntry): boolean {
  if (a.type !== b.type) return false;
  if (a.type === 'symlink') return a.target === b.target;
  if (a.type === 'file') return a.staged?.sha256 === b.staged?.sha256 && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid;
  return true;
}

function describe(entry: TreeEntry): string {
  if (entry.type === 'symlink') return `link to ${entry.target ?? ''}`;
  if (entry.type === 'file') return `file, ${entry.staged?.size ?? 0} bytes, sha256 ${entry.staged?.sha256.slice(0, 12) ?? ''}…`;
  return 'directory';
}

function badEntry(origin: string, name: string, why: string): BrlError {
  return new BrlError(`${origin}: entry "${name}" ${why}; refusing to put it in an image`, {
    hint: 'the deb is malformed or hostile: check where it came from and its pinned digest',
    exitCode: ExitCode.verifyFailed,
    code: 'UNSAFE_DEB_ENTRY',
  });
}
