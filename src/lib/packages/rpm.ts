// The few rpm(8) calls package builds need: list an RPM's payload, and install RPMs into a build sysroot.
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { promisify } from 'node:util';

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
 * Creates the sysroot's rpm database and installs `rpms` into it without scripts or dependency
 * checks: brl installs the whole build-dependency closure itself, and rpmbuild then checks the
 * spec's BuildRequires against this database.
 */
export async function installIntoSysroot(sysroot: string, rpms: readonly string[]): Promise<string> {
  await mkdir(sysroot, { recursive: true });
  const base = ['--root', sysroot, '--dbpath', sysrootDbPath];
  await execFileAsync('rpm', [...base, '--initdb']);
  if (rpms.length === 0) return '';
  const { stdout, stderr } = await execFileAsync(
    'rpm',
    [...base, '-i', '--nodeps', '--noscripts', '--notriggers', '--nosignature', '--ignorearch', '--ignoreos', ...rpms],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  return `${stdout}${stderr}`;
}
