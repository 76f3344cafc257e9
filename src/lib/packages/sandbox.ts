// The build sandbox: bubblewrap with no network, only the toolchain of the host visible (read-only),
// only the build directory writable, and never root's privileges on the host.
import { execFile, spawn } from 'node:child_process';
import { lstatSync, readlinkSync } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BrlError, ExitCode } from '../core/errors.ts';
import { requireHostTools } from '../doctor/doctor.ts';
import { sandboxBuildDir } from './macros.ts';

const execFileAsync = promisify(execFile);

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

/**
 * The host user a build started by root runs as: nobody, which owns no file the build could
 * reach. Inside the sandbox's user namespace it is uid 0 (so rpmbuild records root as the owner,
 * as before), on the host it is 65534 with no groups and no capabilities.
 */
export const buildUser = { uid: 65534, gid: 65534 } as const;

/**
 * Where root's private mount namespace shows the build's directories to the build user: a tmpfs
 * with 0755 parents, since the real paths may lie below 0700 directories (/root, mkdtemp).
 */
export const neutralRoot = '/run/brl-sandbox';

/**
 * Runs in the new mount namespace, as root: a private tmpfs on the neutral root, each `source
 * target` pair bound there (recursively, like bwrap's binds), then the rest of the arguments.
 */
const bindScript = [
  'set -eu',
  `mount -t tmpfs -o mode=0755,nosuid,nodev,size=1m brl-sandbox ${neutralRoot}`,
  'while [ "$1" != -- ]; do',
  '  if [ -d "$1" ]; then mkdir "$2"; else : > "$2"; fi',
  '  mount --rbind "$1" "$2"',
  '  shift 2',
  'done',
  'shift',
  'exec "$@"',
].join('\n');

/** Root becomes `buildUser` with no supplementary groups, no capabilities it could ever regain, and no new privileges. */
const dropToBuildUser = [
  'setpriv', `--reuid=${buildUser.uid}`, `--regid=${buildUser.gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--nnp', '--',
];

export interface SandboxInvocation {
  file: string;
  args: string[];
}

/**
 * The command that runs `command` in the sandbox for a process of `uid`. Anyone but root runs
 * bwrap directly (bwrap then makes its own user namespace, as an unprivileged user always had).
 * Root makes a private mount namespace holding the build's directories at neutral paths, drops to
 * `buildUser` (no groups, no capabilities, no new privileges) and runs bwrap in a user namespace
 * mapping uid and gid 0 to it.
 */
export function sandboxInvocation(options: Omit<SandboxOptions, 'logFd'>, command: readonly string[], uid: number): SandboxInvocation {
  if (uid !== 0) return { file: 'bwrap', args: sandboxArgs(options, command) };
  const readOnlyBinds = options.readOnlyBinds ?? [];
  const neutral = {
    buildDir: `${neutralRoot}/build`,
    etcDir: `${neutralRoot}/etc`,
    readOnlyBinds: readOnlyBinds.map((bind, index) => ({ source: `${neutralRoot}/ro-${index}`, target: bind.target })),
  };
  const binds = [
    [options.buildDir, neutral.buildDir],
    [options.etcDir, neutral.etcDir],
    ...readOnlyBinds.map((bind, index) => [bind.source, neutral.readOnlyBinds[index]?.source as string]),
  ];
  return {
    file: 'unshare',
    args: [
      '--mount', '--propagation', 'private', '--',
      'sh', '-c', bindScript, 'brl-sandbox', ...binds.flat(), '--',
      ...dropToBuildUser,
      'bwrap', '--unshare-user', '--uid', '0', '--gid', '0',
      ...sandboxArgs({ ...options, ...neutral }, command),
    ],
  };
}

/**
 * Runs `command` in the sandbox; resolves to its exit code (or 128 + signal). Started by root, the
 * build directory belongs to `buildUser` while the build runs and to its previous owner again
 * before this returns, whatever the build did (the build's processes are gone by then: bwrap's
 * PID namespace dies with it), so its RPMs and anything kept from it belong to the invoking user.
 */
export async function runSandboxed(options: SandboxOptions, command: readonly string[]): Promise<number> {
  const uid = process.getuid?.() ?? -1;
  const invocation = sandboxInvocation(options, command, uid);
  if (uid !== 0) return run(invocation, options.logFd);
  requireHostTools(['unshare', 'setpriv', 'mount']);
  await checkUserNamespaces();
  const owner = await stat(options.buildDir);
  await mkdir(neutralRoot, { recursive: true, mode: 0o755 });
  await chownTree(options.buildDir, buildUser.uid, buildUser.gid);
  try {
    return await run(invocation, options.logFd);
  } finally {
    await chownTree(options.buildDir, owner.uid, owner.gid);
  }
}

function run(invocation: SandboxInvocation, logFd: number | 'ignore'): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(invocation.file, invocation.args, { stdio: ['ignore', logFd, logFd] });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal])));
  });
}

/** `chown -hR`: symbolic links are changed themselves, never followed. */
async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await execFileAsync('chown', ['-hR', '--', `${uid}:${gid}`, dir]);
}

let userNamespaces: Promise<void> | undefined;

/** Once per process: can the build user make the user namespace bwrap needs? Else say how to allow it. */
function checkUserNamespaces(): Promise<void> {
  userNamespaces ??= (async () => {
    const [file, ...args] = dropToBuildUser as [string, ...string[]];
    const code = await run({ file, args: [...args, 'bwrap', '--unshare-user', '--uid', '0', '--gid', '0', '--ro-bind', '/', '/', 'true'] }, 'ignore');
    if (code !== 0) {
      throw new BrlError(`the package build sandbox cannot run as the unprivileged user ${buildUser.uid}: bwrap could not create a user namespace`, {
        hint: 'allow unprivileged user namespaces: sysctl kernel.unprivileged_userns_clone=1 (Debian), kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu), user.max_user_namespaces > 0',
        exitCode: ExitCode.buildFailed,
        code: 'NO_USER_NAMESPACES',
      });
    }
  })();
  return userNamespaces;
}
