// The versioned directory chain (`current → v1 → v1.26 → v1.26.1 → v1.26.1_<rand>/`) and its durable updates.
import { randomBytes } from 'node:crypto';
import { mkdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fsyncDirectory } from '../../core/fs.ts';
import { errnoCode } from '../../core/errors.ts';

export const DATASTORE_BASE = 'var/lib/bottlerocket/datastore';

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** Random ASCII alphanumerics, as upstream uses for version directories and transaction names. */
export function randomAlnum(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const byte of bytes) out += ALNUM[byte % ALNUM.length];
  return out;
}

/** fsync on a directory makes its entries (creations, renames) durable. */

/** Points `linkPath` at `target` atomically (temp link + rename). */
export async function replaceSymlink(linkPath: string, target: string): Promise<void> {
  const temp = join(dirname(linkPath), `.${basename(linkPath)}.${randomAlnum(8)}.link`);
  await symlink(target, temp);
  try {
    await rename(temp, linkPath);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

export interface VersionChain {
  /** The version directory holding live/ and pending/. */
  versionDir: string;
  /** From the patch link's name, without the `v`. */
  version: string;
}

/** Follows `<base>/current` link by link; the last link's name is the datastore version. */
export async function readVersionChain(base: string): Promise<VersionChain | undefined> {
  let path = join(base, 'current');
  let lastLinkName: string | undefined;
  for (let depth = 0; depth < 8; depth += 1) {
    let target: string;
    try {
      target = await readlink(path);
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT') return undefined;
      if (code === 'EINVAL') {
        const version = lastLinkName?.replace(/^v/, '') ?? basename(path).replace(/^v/, '').replace(/_.*$/, '');
        return { versionDir: path, version };
      }
      throw error;
    }
    lastLinkName = basename(path);
    path = resolve(dirname(path), target);
  }
  throw new Error(`datastore link chain under ${base} is longer than 8 links`);
}

/** Creates `v<version>_<rand>/live` and the link chain to it; returns the version directory. */
export async function createVersionTree(base: string, version: string): Promise<string> {
  const parts = parseVersion(version);
  await mkdir(base, { recursive: true });
  const dirName = `v${version}_${randomAlnum(16)}`;
  const versionDir = join(base, dirName);
  await mkdir(join(versionDir, 'live'), { recursive: true });
  await fsyncDirectory(versionDir);
  await linkChain(base, parts, dirName);
  return versionDir;
}

/** Re-points patch, minor, major and `current` links at `dirName` (already inside `base`). */
export async function linkChain(base: string, parts: [number, number, number], dirName: string): Promise<void> {
  const [major, minor, patch] = parts;
  await replaceSymlink(join(base, `v${major}.${minor}.${patch}`), dirName);
  await replaceSymlink(join(base, `v${major}.${minor}`), `v${major}.${minor}.${patch}`);
  await replaceSymlink(join(base, `v${major}`), `v${major}.${minor}`);
  await replaceSymlink(join(base, 'current'), `v${major}`);
  await fsyncDirectory(base);
}

export function parseVersion(version: string): [number, number, number] {
  const match = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(version.trim());
  if (!match) throw new Error(`'${version}' is not a major.minor.patch version`);
  return [Number(match[1]), Number(match[2]), Number(match[3])];
}

export function compareVersions(left: string, right: string): number {
  const a = parseVersion(left);
  const b = parseVersion(right);
  for (let index = 0; index < 3; index += 1) {
    const diff = (a[index] as number) - (b[index] as number);
    if (diff !== 0) return Math.sign(diff);
  }
  return 0;
}
