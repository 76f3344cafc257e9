// The build sandbox: bubblewrap with no network, only the toolchain of the host visible (read-only),
// and only the build directory writable.
import { spawn } from 'node:child_process';
import { lstatSync, readlinkSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import { sandboxBuildDir } from './macros.ts';

/**
 * The host's directories the build sees, read-only: the toolchain and the kernel's /sys. Not /etc
 * (a spec could copy /etc/shadow into an RPM), /var or /opt: of /etc only what the toolchain reads
 * is bound (hostEtcFiles), and passwd/group are generated.
 */
const hostSystemPaths = ['usr', 'sys', 'bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];
/** Debian's tool links (awk, cc, c++ … point into /etc/alternatives) and the loader's cache. */
const hostEtcFiles = ['/etc/alternatives', '/etc/ld.so.cache'];

/** The generated /etc/passwd and /etc/group: root (the build) and nobody. */
export async function writeSandboxEtc(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'passwd'), `root:x:0:0:root:${sandboxBuildDir}/home:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`);
  await writeFile(join(dir, 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  return dir;
}

export interface SandboxOptions {
  /** Host directory mounted read-write at `sandboxBuildDir`; nothing else is writable. */
  buildDir: string;
  /** Directory holding the generated passwd and group (writeSandboxEtc), bound read-only in /etc. */
  etcDir: string;
  /** Read-only binds of host paths to absolute sandbox paths (the build dependencies' sysroot). */
  readOnlyBinds?: Array<{ source: string; target: string }>;
  /** Extra environment; the sandbox starts from an empty one. */
  env: Record<string, string>;
  /** File descriptor receiving stdout and stderr. */
  logFd: number;
}

const sandboxPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * bwrap arguments. The root is a fresh tmpfs holding the host's system directories read-only (so
 * the sysroot can appear at its own path), then remounted read-only. Order matters: the private
 * /tmp is mounted before the build directory is bound inside it. Capabilities are dropped so even a
 * root build cannot remount anything; the new network namespace has only its own loopback device.
 */
export function sandboxArgs(options: Omit<SandboxOptions, 'logFd'>, command: readonly string[]): string[] {
  const env = { PATH: sandboxPath, HOME: `${sandboxBuildDir}/home`, LANG: 'C.UTF-8', TZ: 'UTC', TMPDIR: '/tmp', ...options.env };
  return [
    ...hostSystemPaths.flatMap(hostPathArgs),
    '--dir', '/etc',
    ...hostEtcFiles.flatMap((path) => ['--ro-bind-try', path, path]),
    '--ro-bind', join(options.etcDir, 'passwd'), '/etc/passwd',
    '--ro-bind', join(options.etcDir, 'group'), '/etc/group',
    '--dev', '/dev',
    '--proc', '/proc',
    '--tmpfs', '/tmp',
    '--bind', options.buildDir, sandboxBuildDir,
    ...(options.readOnlyBinds ?? []).flatMap((bind) => ['--ro-bind', bind.source, bind.target]),
    '--remount-ro', '/',
    '--chdir', sandboxBuildDir,
    '--unshare-net',
    '--unshare-ipc',
    '--unshare-pid',
    '--unshare-uts',
    '--hostname', 'brl-build',
    '--cap-drop', 'ALL',
    '--die-with-parent',
    '--new-session',
    '--clearenv',
    ...Object.entries(env).flatMap(([name, value]) => ['--setenv', name, value]),
    '--',
    ...command,
  ];
}

/** `/usr` is bound; `/bin -> usr/bin` stays a symlink; a path the host lacks is left out. */
function hostPathArgs(name: string): string[] {
  const path = `/${name}`;
  try {
    const stats = lstatSync(path);
    return stats.isSymbolicLink() ? ['--symlink', readlinkSync(path), path] : ['--ro-bind', path, path];
  } catch {
    return [];
  }
}

/** Runs `command` in the sandbox; resolves to its exit code (or 128 + signal). */
export function runSandboxed(options: SandboxOptions, command: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('bwrap', sandboxArgs(options, command), { stdio: ['ignore', options.logFd, options.logFd] });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal])));
  });
}
