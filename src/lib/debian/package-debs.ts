// A brl package that repackages Debian debs: its [debian] table and its debs.lock.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { readString, readStringArray, readTable, rejectUnknownKeys, tomlKeyError, type TomlDocument } from '../core/toml.ts';
import { debFileName, inputsDigest, lockFileName, parseLock, type DebianRoots, type DebLock } from './lock-file.ts';

const debianKeys = ['architecture', 'roots', 'exclude'];

/**
 * `[debian]`; `architecture` names the one Debian architecture to lock, else the closure is locked
 * for each of `defaultArchitectures` (a package's arches).
 */
export function parseDebianTable(doc: TomlDocument, defaultArchitectures: readonly string[] = ['amd64']): DebianRoots | undefined {
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
  const named = readString(doc, table, 'architecture', prefix);
  const architectures = named === undefined ? [...defaultArchitectures] : [named];
  return { architecture: architectures[0] ?? 'amd64', architectures, roots, exclude };
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
  if (lock.inputs !== inputsDigest(roots) || lock.architectures.join(' ') !== roots.architectures.join(' ')) {
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

export interface LockedExternalFile {
  url: string;
  kind: 'deb';
  sha512: string;
  fileName: string;
  forceUpstream: boolean;
  /** The closures (Debian architectures) that hold the deb. */
  debianArchitectures: string[];
}

/**
 * Each locked deb once as an external file pinned by sha512, fetched through apt as
 * `deb:name:arch=version` (`deb:name=version` for an `all` deb); a foreign architecture needs
 * to be enabled in dpkg (`dpkg --add-architecture arm64`, which brl's host-tools step does).
 */
export function lockedExternalFiles(lock: DebLock): LockedExternalFile[] {
  const byFile = new Map<string, LockedExternalFile>();
  for (const deb of lock.debs) {
    const fileName = debFileName(deb);
    const known = byFile.get(fileName);
    if (known !== undefined) {
      if (!known.debianArchitectures.includes(deb.forArchitecture)) known.debianArchitectures.push(deb.forArchitecture);
      continue;
    }
    const qualifier = deb.architecture === 'all' ? '' : `:${deb.architecture}`;
    byFile.set(fileName, {
      url: `deb:${deb.name}${qualifier}=${deb.version}`,
      kind: 'deb',
      sha512: deb.sha512,
      fileName,
      forceUpstream: false,
      debianArchitectures: [deb.forArchitecture],
    });
  }
  return [...byFile.values()];
}
