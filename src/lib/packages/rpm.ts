// brl's rpm(8) calls: read RPM headers (identity, licence, dependencies) and payloads, and install
// RPMs into a root (a package build's sysroot or a variant's staging root).
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import { BrlError, ExitCode } from '../core/errors.ts';
import { hashFile } from '../core/hash.ts';

const execFileAsync = promisify(execFile);

/** The rpm database inside a sysroot, relative to the sysroot (what `%_dbpath` points at in the sandbox). */
export const sysrootDbPath = '/var/lib/rpm';

const queryOptions = ['--nosignature', '--nodigest'];

export interface RpmPayloadEntry {
  path: string;
  /** st_mode as rpm records it. */
  mode: number;
}

/** Every path in the RPM's payload with its mode. */
export async function listPayload(rpmPath: string): Promise<RpmPayloadEntry[]> {
  const { stdout } = await execFileAsync('rpm', ['-qp', ...queryOptions, '--qf', '[%{FILENAMES}\t%{FILEMODES}\n]', rpmPath], {
    maxBuffer: 256 * 1024 * 1024,
  });
  return stdout
    .split('\n')
    .filter((line) => line.includes('\t'))
    .map((line) => {
      const [path, mode] = line.split('\t') as [string, string];
      return { path, mode: Number(mode) };
    });
}

export function isRegularFile(mode: number): boolean {
  return (mode & 0o170000) === 0o100000;
}

/**
 * Installs `rpms` into `root` with its rpm database at `dbPath` (inside the root), without scripts
 * or dependency checks: brl resolves the closure itself. The one install both package builds
 * (build sysroots) and variant builds (image staging roots) use.
 */
export async function installRpms(root: string, rpms: readonly string[], dbPath: string = sysrootDbPath): Promise<string> {
  await mkdir(root, { recursive: true });
  const base = ['--root', root, '--dbpath', dbPath];
  await execFileAsync('rpm', [...base, '--initdb']);
  if (rpms.length === 0) return '';
  const { stdout, stderr } = await execFileAsync(
    'rpm',
    [...base, '-i', '--nodeps', '--noscripts', '--notriggers', '--nosignature', '--ignorearch', '--ignoreos', ...rpms],
    { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } },
  );
  return `${stdout}${stderr}`;
}

/** A build sysroot: rpmbuild then checks the spec's BuildRequires against its database. */
export function installIntoSysroot(sysroot: string, rpms: readonly string[]): Promise<string> {
  return installRpms(sysroot, rpms);
}

/** RPMSENSE_* bits that matter for resolution. */
export const SenseFlags = { less: 2, greater: 4, equal: 8, interpreter: 1 << 8, rpmlib: 1 << 24 } as const;

export interface Dependency {
  /** A capability name, or a rich dependency expression starting with `(`. */
  name: string;
  flags: number;
  /** `[epoch:]version[-release]`, empty when unversioned. */
  version: string;
}

export interface RpmPackage {
  path: string;
  name: string;
  epoch: number | undefined;
  version: string;
  release: string;
  arch: string;
  license: string;
  url: string;
  summary: string;
  group: string;
  sourceRpm: string;
  installedSizeBytes: number;
  /** SHA-256 of the .rpm file. */
  sha256: string;
  requires: Dependency[];
  provides: Dependency[];
  conflicts: Dependency[];
  obsoletes: Dependency[];
  /** Paths the package installs; a requirement on a path is satisfied by them. */
  files: string[];
}

const queryFormat = [
  'N=%{NAME}', 'E=%{EPOCH}', 'V=%{VERSION}', 'R=%{RELEASE}', 'A=%{ARCH}', 'L=%{LICENSE}', 'U=%{URL}',
  'S=%{SUMMARY}', 'G=%{GROUP}', 'P=%{SOURCERPM}', 'Z=%{LONGSIZE}',
].join('\\n') + '\\n' +
  '[Q\\t%{REQUIRENAME}\\t%{REQUIREFLAGS}\\t%{REQUIREVERSION}\\n]' +
  '[O\\t%{PROVIDENAME}\\t%{PROVIDEFLAGS}\\t%{PROVIDEVERSION}\\n]' +
  '[C\\t%{CONFLICTNAME}\\t%{CONFLICTFLAGS}\\t%{CONFLICTVERSION}\\n]' +
  '[X\\t%{OBSOLETENAME}\\t%{OBSOLETEFLAGS}\\t%{OBSOLETEVERSION}\\n]' +
  '[F\\t%{FILENAMES}\\n]';

/** Queries one RPM; an unreadable or corrupt file is a BrlError naming it. */
export async function queryRpm(path: string): Promise<RpmPackage> {
  let stdout: string;
  try {
    // -K checks the header and payload digests, which a header query alone does not read.
    await execFileAsync('rpm', ['-K', '--nosignature', path], { env: { ...process.env, LC_ALL: 'C' } });
    ({ stdout } = await execFileAsync('rpm', ['-qp', '--nosignature', '--qf', queryFormat, path], {
      maxBuffer: 256 * 1024 * 1024,
      env: { ...process.env, LC_ALL: 'C' },
    }));
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim() ?? String(error);
    throw new BrlError(`cannot read RPM ${path}: ${stderr}`, {
      hint: 'the file is corrupt or not an RPM; rebuild the package (brl build package NAME)',
      exitCode: ExitCode.badInput,
      code: 'CORRUPT_RPM',
    });
  }
  const pkg: RpmPackage = {
    path, name: '', epoch: undefined, version: '', release: '', arch: '', license: '', url: '', summary: '',
    group: '', sourceRpm: '', installedSizeBytes: 0, sha256: await sha256File(path),
    requires: [], provides: [], conflicts: [], obsoletes: [], files: [],
  };
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    if (line[1] === '=') {
      const value = line.slice(2) === '(none)' ? '' : line.slice(2);
      switch (line[0]) {
        case 'N': pkg.name = value; break;
        case 'E': pkg.epoch = value === '' ? undefined : Number(value); break;
        case 'V': pkg.version = value; break;
        case 'R': pkg.release = value; break;
        case 'A': pkg.arch = value; break;
        case 'L': pkg.license = value; break;
        case 'U': pkg.url = value; break;
        case 'S': pkg.summary = value; break;
        case 'G': pkg.group = value; break;
        case 'P': pkg.sourceRpm = value; break;
        case 'Z': pkg.installedSizeBytes = Number(value) || 0; break;
      }
      continue;
    }
    const [kind, name = '', flags = '0', version = ''] = line.split('\t');
    if (kind === 'F') { pkg.files.push(name); continue; }
    const dependency = { name, flags: Number(flags), version };
    if (kind === 'Q') pkg.requires.push(dependency);
    else if (kind === 'O') pkg.provides.push(dependency);
    else if (kind === 'C') pkg.conflicts.push(dependency);
    else if (kind === 'X') pkg.obsoletes.push(dependency);
  }
  if (pkg.name === '' || pkg.version === '') {
    throw new BrlError(`cannot read RPM ${path}: the header has no name or version`, {
      exitCode: ExitCode.badInput,
      code: 'CORRUPT_RPM',
    });
  }
  return pkg;
}

/** `name-[epoch:]version-release.arch`, the form rpm prints. */
export function nevra(pkg: RpmPackage): string {
  return `${pkg.name}-${pkg.epoch === undefined ? '' : `${pkg.epoch}:`}${pkg.version}-${pkg.release}.${pkg.arch}`;
}

async function sha256File(path: string): Promise<string> {
  try {
    return (await hashFile(path)).hex;
  } catch (error) {
    throw new BrlError(`cannot read RPM ${path}: ${(error as Error).message}`, { exitCode: ExitCode.notFound, code: 'MISSING_RPM' });
  }
}
