// `brl debs lock`: resolve each package's [debian] roots against apt's indices, pin every deb of the
// closure by sha512 (downloading the ones the lock does not know yet, verified by apt against the
// signed index), and write debs.lock, or with `check` say whether the lock is current.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BrlError, ExitCode } from '../core/errors.ts';
import { writeFileAtomic } from '../core/fs.ts';
import { hashFile } from '../core/hash.ts';
import type { FetchConfig } from '../fetch/config.ts';
import { lookasidePath } from '../fetch/lookaside.ts';
import { basename } from 'node:path';
import { listPackageIndices, readPackageIndex, type BinaryPackage } from './indices.ts';
import { debFileName, inputsDigest, parseLock, renderLock, type DebLock, type LockedDeb } from './lock-file.ts';
import type { PackageDebs } from './package-debs.ts';
import { resolveClosure, type Closure, type ResolvedPackage } from './resolve.ts';

const run = promisify(execFile);

export interface LockChange {
  name: string;
  /** Absent for a deb the lock gains. */
  from?: string;
  /** Absent for a deb the lock loses. */
  to?: string;
}

export interface PackageLockResult {
  package: string;
  lockPath: string;
  debs: number;
  /** Bytes of all locked debs together. */
  size: number;
  current: boolean;
  changes: LockChange[];
  /** Excludes no package in the closure needs any more. */
  unusedExcludes: string[];
}

export interface LockOptions {
  /** Only compare: write nothing and download nothing. */
  check?: boolean;
  fetch: FetchConfig;
  log?: (line: string) => void;
}

/**
 * What has a `[debian]` table and a lock next to it: a package (packages-specs/) or a host-container
 * image (host-containers/); `name` is what `brl debs lock NAME` is given.
 */
export interface DebianLockTarget {
  name: string;
  manifestPath: string;
  debian?: PackageDebs;
}

export async function lockPackages(definitions: readonly DebianLockTarget[], options: LockOptions): Promise<PackageLockResult[]> {
  const universes = new Map<string, Promise<BinaryPackage[]>>();
  const results: PackageLockResult[] = [];
  for (const definition of definitions) {
    const debian = definition.debian;
    if (debian === undefined) continue;
    const closures: Array<{ architecture: string; closure: Closure }> = [];
    for (const architecture of debian.roots.architectures) {
      let universe = universes.get(architecture);
      if (universe === undefined) {
        universe = loadUniverse(architecture);
        universes.set(architecture, universe);
      }
      const closure = resolveClosure(await universe, {
        roots: debian.roots.roots,
        exclude: debian.roots.exclude,
        architecture,
        where: `${definition.manifestPath} [debian]`,
      });
      closures.push({ architecture, closure });
    }
    const previous = debian.lock ?? (await readAnyLock(debian.lockPath));
    const known = new Map((previous?.debs ?? []).map((deb) => [`${deb.name} ${deb.version} ${deb.sha256}`, deb.sha512]));
    // An `all` deb in several closures is one file: download it once.
    const missing = new Map<string, BinaryPackage>();
    for (const { closure } of closures) {
      for (const { pkg } of closure.packages) if (!known.has(keyOf(pkg))) missing.set(keyOf(pkg), pkg);
    }
    const sha512s = new Map<string, string>();
    if (!options.check && missing.size > 0) {
      options.log?.(`${definition.name}: downloading ${missing.size} deb(s) to pin them by sha512`);
      for (const [key, sha512] of await pinByDownload([...missing.values()], options.fetch)) sha512s.set(key, sha512);
    }
    const lock: DebLock = {
      inputs: inputsDigest(debian.roots),
      architecture: debian.roots.architecture,
      architectures: debian.roots.architectures,
      debs: closures.flatMap(({ architecture, closure }) =>
        closure.packages.map((resolved) => lockedDeb(architecture, resolved, known.get(keyOf(resolved.pkg)) ?? sha512s.get(keyOf(resolved.pkg)) ?? '')),
      ),
      excluded: closures.flatMap(({ architecture, closure }) => closure.excluded.map((exclusion) => ({ forArchitecture: architecture, ...exclusion }))),
    };
    const changes = diff(previous, lock);
    const current = debian.lock !== undefined && missing.size === 0 && changes.length === 0 && sameExclusions(debian.lock, lock);
    if (!options.check && !current) {
      await writeFileAtomic(debian.lockPath, renderLock(lock, `brl debs lock ${definition.name}`, basename(definition.manifestPath)));
    }
    results.push({
      package: definition.name,
      lockPath: debian.lockPath,
      debs: lock.debs.length,
      size: lock.debs.reduce((sum, deb) => sum + deb.size, 0),
      current,
      changes,
      // An exclude is unused only when no architecture's closure needs it.
      unusedExcludes: closures.map(({ closure }) => closure.unusedExcludes).reduce((common, unused) => common.filter((name) => unused.includes(name))),
    });
  }
  return results;
}

async function loadUniverse(architecture: string): Promise<BinaryPackage[]> {
  const indices = await listPackageIndices(architecture);
  return (await Promise.all(indices.map(readPackageIndex))).flat();
}

async function readAnyLock(path: string): Promise<DebLock | undefined> {
  // A stale lock still knows sha512s worth reusing; an unreadable one is simply regenerated.
  try {
    return parseLock(path, await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
}

function keyOf(pkg: BinaryPackage): string {
  return `${pkg.name} ${pkg.version} ${pkg.sha256}`;
}

function lockedDeb(forArchitecture: string, { pkg, requiredBy }: ResolvedPackage, sha512: string): LockedDeb {
  return {
    forArchitecture,
    name: pkg.name,
    version: pkg.version,
    architecture: pkg.architecture,
    source: pkg.source,
    url: pkg.url,
    size: pkg.size,
    sha256: pkg.sha256,
    sha512,
    requiredBy,
  };
}

/**
 * apt downloads the debs (checking each against the sha256 of its signed index); brl hashes them
 * with sha512, checks the sha256 once more and files them in the lookaside cache, where the
 * package build's fetch finds them.
 */
async function pinByDownload(packages: readonly BinaryPackage[], fetch: FetchConfig): Promise<Map<string, string>> {
  await mkdir(fetch.cacheDir, { recursive: true });
  const workDir = await mkdtemp(join(fetch.cacheDir, '.debs-lock-'));
  const pinned = new Map<string, string>();
  try {
    try {
      await run('apt-get', ['download', '-o', 'APT::Sandbox::User=root', ...packages.map((pkg) => `${pkg.name}:${pkg.architecture}=${pkg.version}`)], {
        cwd: workDir,
        timeout: 30 * 60_000,
        maxBuffer: 64 * 1024 * 1024,
      });
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr?.trim() ?? String(error);
      throw new BrlError(`apt-get download failed: ${stderr.split('\n').slice(-3).join(' ')}`, {
        hint: 'check the network and the apt sources; `apt-get update` refreshes the indices the lock is made from',
        exitCode: ExitCode.network,
        code: 'DEB_DOWNLOAD_FAILED',
      });
    }
    const files = new Set(await readdir(workDir));
    for (const pkg of packages) {
      const fileName = debFileName(pkg);
      // apt names its download with the epoch (`:` as %3a); the pool file and the lock leave it out.
      const aptName = `${pkg.name}_${pkg.version.replace(':', '%3a')}_${pkg.architecture}.deb`;
      if (!files.has(aptName)) throw new BrlError(`apt-get download left no ${aptName} for ${pkg.name} ${pkg.version}`, { exitCode: ExitCode.network, code: 'DEB_DOWNLOAD_FAILED' });
      const path = join(workDir, aptName);
      const sha256 = (await hashFile(path, 'sha256')).hex;
      if (sha256 !== pkg.sha256) {
        throw new BrlError(`${fileName}: sha256 ${sha256} is not the index's ${pkg.sha256}`, { exitCode: ExitCode.network, code: 'DEB_DIGEST_MISMATCH' });
      }
      const sha512 = (await hashFile(path, 'sha512')).hex;
      const cached = lookasidePath(fetch.cacheDir, { fileName, sha512 });
      await mkdir(join(cached, '..'), { recursive: true });
      await rename(path, cached);
      pinned.set(keyOf(pkg), sha512);
    }
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
  return pinned;
}

/** Changes by deb, named `name` for a lock of one architecture and `name:arch` (the closure's) for several. */
function diff(before: DebLock | undefined, after: DebLock): LockChange[] {
  const label = (deb: LockedDeb): string => (after.architectures.length === 1 ? deb.name : `${deb.name}:${deb.forArchitecture}`);
  const old = new Map((before?.debs ?? []).map((deb) => [label(deb), deb.version]));
  const now = new Map(after.debs.map((deb) => [label(deb), deb.version]));
  const changes: LockChange[] = [];
  for (const name of [...new Set([...old.keys(), ...now.keys()])].sort()) {
    const from = old.get(name);
    const to = now.get(name);
    if (from === to) continue;
    changes.push({ name, ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }) });
  }
  return changes;
}

function sameExclusions(a: DebLock, b: DebLock): boolean {
  return JSON.stringify(a.excluded) === JSON.stringify(b.excluded) && JSON.stringify(a.debs.map((deb) => deb.requiredBy)) === JSON.stringify(b.debs.map((deb) => deb.requiredBy));
}
