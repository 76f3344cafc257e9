// A brl package that repackages Debian debs: its [debian] table and its debs.lock.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { readString, readStringArray, readTable, rejectUnknownKeys, tomlKeyError, type TomlDocument } from '../core/toml.ts';
import { debFileName, inputsDigest, lockFileName, parseLock, type DebianRoots, type DebLock } from './lock-file.ts';

const debianKeys = ['architecture', 'roots', 'exclude'];

export function parseDebianTable(doc: TomlDocument): DebianRoots | undefined {
  const table = readTable(doc, doc.data, 'debian');
  if (table === undefined) return undefined;
  const prefix = 'debian.';
  rejectUnknownKeys(doc, table, debianKeys, prefix);
  const roots = readStringArray(doc, table, 'roots', prefix);
  if (roots === undefined || roots.length === 0) throw tomlKeyError(doc, `${prefix}roots`, 'must name at least one Debian package');
  const exclude = new Map<string, string>();
  const excludeTable = readTable(doc, table, 'exclude', prefix) ?? {};
  for (const name of Object.keys(excludeTable)) {
    const reason = readString(doc, excludeTable, name, `${prefix}exclude.`);
    if (reason === undefined || reason.trim() === '') throw tomlKeyError(doc, `${prefix}exclude.${name}`, 'must say why the package is left out (what provides it instead)');
    exclude.set(name, reason);
  }
  return { architecture: readString(doc, table, 'architecture', prefix) ?? 'amd64', roots, exclude };
}

export interface PackageDebs {
  roots: DebianRoots;
  lockPath: string;
  /** Absent when the lock is missing or was made from other roots (see `problem`). */
  lock?: DebLock;
  problem?: string;
}

export async function loadPackageDebs(packageName: string, dir: string, roots: DebianRoots): Promise<PackageDebs> {
  const lockPath = join(dir, lockFileName);
  if (!existsSync(lockPath)) return { roots, lockPath, problem: `${lockPath} does not exist` };
  const lock = parseLock(lockPath, await readFile(lockPath, 'utf8'));
  if (lock.inputs !== inputsDigest(roots) || lock.architecture !== roots.architecture) {
    return { roots, lockPath, problem: `${lockPath} was generated from other [debian] roots or excludes than package ${packageName}'s package.toml now lists` };
  }
  return { roots, lockPath, lock };
}

/** The lock as a build needs it; a missing or stale lock is the user's to regenerate. */
export function currentLock(packageName: string, debs: PackageDebs): DebLock {
  if (debs.lock !== undefined) return debs.lock;
  throw new BrlError(`package ${packageName}: ${debs.problem ?? 'no debs.lock'}`, {
    hint: `run \`brl debs lock ${packageName}\` and commit ${lockFileName}`,
    exitCode: ExitCode.badInput,
    code: 'DEB_LOCK_STALE',
  });
}

/** Each locked deb as an external file, fetched through apt (`deb:name=version`) and pinned by sha512. */
export function lockedExternalFiles(lock: DebLock): { url: string; kind: 'deb'; sha512: string; fileName: string; forceUpstream: boolean }[] {
  return lock.debs.map((deb) => ({ url: `deb:${deb.name}=${deb.version}`, kind: 'deb', sha512: deb.sha512, fileName: debFileName(deb), forceUpstream: false }));
}
