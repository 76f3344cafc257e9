// Small, safe operations on a staged filesystem tree: contained paths, clamped times, sorted walks.
import { lstat, lutimes, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';

/** `root/relativePath`, refusing anything that escapes `root` or passes through a symlink. */
export async function containedPath(root: string, relativePath: string): Promise<string> {
  const target = resolve(root, relativePath.replace(/^\/+/, ''));
  const rel = relative(root, target);
  if (rel.startsWith('..') || rel === '' ) throw new Error(`${relativePath} is not inside ${root}`);
  let current = root;
  for (const part of rel.split(sep).slice(0, -1)) {
    current = join(current, part);
    const info = await lstat(current).catch(() => undefined);
    if (info?.isSymbolicLink()) {
      throw new BrlError(`/${rel} in the image passes through the symlink /${relative(root, current)}`, {
        hint: 'a package replaced a directory brl writes to with a symlink; install the file at its real path',
        exitCode: ExitCode.buildFailed,
        code: 'SYMLINK_IN_PATH',
      });
    }
  }
  return target;
}

/** Appends to (or creates) a regular file in the tree, never following a symlink at the leaf. */
export async function appendToTreeFile(root: string, relativePath: string, text: string, mode = 0o644): Promise<void> {
  const path = await containedPath(root, relativePath);
  const info = await lstat(path).catch(() => undefined);
  if (info?.isSymbolicLink()) {
    throw new BrlError(`/${relativePath} in the image is a symlink; brl writes only regular files`, {
      exitCode: ExitCode.buildFailed,
      code: 'SYMLINK_IN_PATH',
    });
  }
  const existing = info === undefined ? '' : await readFile(path, 'utf8');
  await writeFile(path, existing + text, { mode });
}

export interface TreeEntry {
  /** Relative to the root, `/`-separated, no leading slash. */
  path: string;
  kind: 'file' | 'directory' | 'symlink' | 'other';
}

/** Every entry under `root`, depth-first in bytewise name order (root itself excluded). */
export async function walkTree(root: string): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const visit = async (dir: string, prefix: string): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
      const kind = entry.isSymbolicLink() ? 'symlink' : entry.isDirectory() ? 'directory' : entry.isFile() ? 'file' : 'other';
      out.push({ path, kind });
      if (kind === 'directory') await visit(join(dir, entry.name), path);
    }
  };
  await visit(root, '');
  return out;
}

/** Sets every mtime/atime newer than `epoch` (and all atimes) to `epoch`; symlinks themselves, not targets. */
export async function clampTimes(root: string, epoch: number): Promise<void> {
  const entries = await walkTree(root);
  for (const path of [...entries.map((entry) => join(root, entry.path)), root]) {
    const info = await lstat(path);
    const mtime = Math.min(info.mtimeMs / 1000, epoch);
    await lutimes(path, epoch, Math.floor(mtime));
  }
}
