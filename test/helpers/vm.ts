// Boots an image with `brl vm run --wait-ready` for VM tests: its own state directory and API
// socket per VM (parallel-safe), and the VM stopped in teardown whatever the test did.
import type { ExecutionContext } from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { apiRequest, type ApiResponse } from '../../src/lib/host/apiclient/request.ts';
import { buildManifestName, type BuildManifest } from '../../src/lib/variant/build-manifest.ts';
import type { VariantBuildResult } from '../../src/lib/variant/build.ts';
import { brl, repoDir } from './cli.ts';

const run = promisify(execFile);

export interface BootedVm {
  arch: 'x86_64' | 'aarch64';
  stateDir: string;
  apiSocket: string;
  consoleLog: string;
  /** The detached supervisor's pid: SIGTERM stops QEMU. */
  pid: number;
  readySeconds: number;
  /** `apiclient -s <socket> …` on the host, through the bridge. */
  apiclient(...args: string[]): Promise<{ stdout: string; stderr: string }>;
  api(method: string, uri: string, body?: unknown): Promise<ApiResponse>;
  console(): string;
  /** Waits until `pattern` occurs `count` times on the console, or fails after `seconds`. */
  waitForConsole(pattern: RegExp, count: number, seconds: number): Promise<void>;
  /** Waits until the guest API answers, or fails after `seconds`. */
  waitForApi(seconds: number): Promise<void>;
  /** `apiclient reboot`, then waits for the next verified root and the API (up to `seconds` each; default 300, 600 on aarch64). */
  reboot(seconds?: number): Promise<void>;
  stop(): Promise<void>;
  /** Pulls the plug: SIGKILL to QEMU (nothing in the guest or QEMU gets to flush), then waits for the supervisor to end. */
  powerOff(): Promise<void>;
}

export interface BootOptions {
  image: string;
  /** `--arch`: the image's arch (default: the machine's). */
  arch?: 'x86_64' | 'aarch64';
  firmware?: 'uefi' | 'bios';
  userData?: string;
  /** `--forward GUEST[:HOST]` rules: the guest reaches 127.0.0.1:HOST as 10.0.2.100:GUEST. */
  forwards?: string[];
  /** Boot again from a VM's state directory with its disks as the last run left them (`--persist`). */
  resume?: string;
  /** OVMF's Secure Boot build with this key set's PK, KEK and db enrolled (`--secure-boot-keys`). */
  secureBootKeys?: string;
}

/** Boots a VM for a test: its state directory (unless resumed) and the VM go with the test. */
export async function bootVm(t: ExecutionContext, options: BootOptions): Promise<BootedVm> {
  const stateDir = options.resume ?? mkdtempSync(join(tmpdir(), 'brl-vm-'));
  if (options.resume === undefined) t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const vm = await startVm({ ...options, resume: stateDir });
  t.teardown(vm.stop);
  return vm;
}

/** Boots a VM in `options.resume` (or a new state directory) and returns once its API answers; the caller stops it. */
export async function startVm(options: BootOptions): Promise<BootedVm> {
  const stateDir = options.resume ?? mkdtempSync(join(tmpdir(), 'brl-vm-'));
  const args = [
    'vm', 'run', '--image', options.image, '--firmware', options.firmware ?? 'uefi', '--accel', 'tcg',
    '--state-dir', stateDir, '--persist', '--wait-ready', '--timeout', String(patience(options.arch) * 420), '--json',
    ...(options.arch === undefined ? [] : ['--arch', options.arch]),
    ...(options.userData === undefined ? [] : ['--user-data', options.userData]),
    ...(options.forwards ?? []).flatMap((forward) => ['--forward', forward]),
    ...(options.secureBootKeys === undefined ? [] : ['--secure-boot-keys', options.secureBootKeys]),
  ];
  const result = await brl(args, { cwd: repoDir });
  if (result.exitCode !== 0) throw new Error(`brl vm run failed (${result.exitCode}): ${result.stdout}${result.stderr}`);
  const started = JSON.parse(result.stdout) as { pid: number; apiSocket: string; consoleLog: string; readySeconds: number };
  const alive = (): boolean => {
    try {
      process.kill(started.pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const stop = async (): Promise<void> => {
    if (!alive()) return;
    process.kill(started.pid, 'SIGTERM');
    // The supervisor gives QEMU 30 s to write its disks back before it kills it.
    for (let i = 0; i < 600 && alive(); i++) await sleep(100);
    if (alive()) process.kill(started.pid, 'SIGKILL');
  };
  const consoleText = (): string => readFileSync(started.consoleLog, 'latin1');
  const api = (method: string, uri: string, body?: unknown): Promise<ApiResponse> =>
    apiRequest(started.apiSocket, method, uri, body === undefined ? undefined : JSON.stringify(body));
  const vm: BootedVm = {
    arch: options.arch ?? 'x86_64',
    stateDir,
    apiSocket: started.apiSocket,
    consoleLog: started.consoleLog,
    pid: started.pid,
    readySeconds: started.readySeconds,
    apiclient: (...rest: string[]) => run(join(repoDir, 'bin', 'apiclient'), ['-s', started.apiSocket, ...rest]),
    api,
    console: consoleText,
    async waitForConsole(pattern, count, seconds) {
      const global = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
      for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline; await sleep(500)) {
        if ((consoleText().match(global) ?? []).length >= count) return;
      }
      throw new Error(`${pattern} did not appear ${count} time(s) on the console within ${seconds} s:\n${consoleText().slice(-3000)}`);
    },
    async waitForApi(seconds) {
      for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline; await sleep(500)) {
        try {
          if ((await api('GET', '/os')).status === 200) return;
        } catch {
          // Not answering yet: the guest is still booting.
        }
      }
      throw new Error(`the guest API did not answer within ${seconds} s:\n${consoleText().slice(-3000)}`);
    },
    async reboot(seconds = patience(options.arch) * 300) {
      const mounted = /verity-init: verified root mounted read-only/g;
      const before = (consoleText().match(mounted) ?? []).length;
      await run(join(repoDir, 'bin', 'apiclient'), ['-s', started.apiSocket, 'reboot']);
      await vm.waitForConsole(mounted, before + 1, seconds);
      await vm.waitForApi(seconds);
    },
    stop,
    async powerOff() {
      const children = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(started.pid)], { encoding: 'utf8' });
      const qemu = children.split('\n').map((line) => line.trim().split(/\s+/)).find(([, name]) => name?.startsWith('qemu-system'));
      if (qemu === undefined) throw new Error(`no QEMU under supervisor ${started.pid}: ${children}`);
      process.kill(Number(qemu[0]), 'SIGKILL');
      for (let i = 0; i < 600 && alive(); i++) await sleep(100);
      if (alive()) throw new Error(`supervisor ${started.pid} did not end after QEMU was killed`);
    },
  };
  return vm;
}

/** How many times longer than x86_64 an aarch64 guest may take: every instruction is translated (TCG). */
export function patience(arch: BootOptions['arch']): number {
  return arch === 'aarch64' ? 2 : 1;
}

/**
 * The partition set, A or B, that each boot on the console ran from, in order: the kernel prints its
 * command line, whose dm-verity table names the BOOT partition GRUB's gptprio chose
 * (`PARTUUID=<BOOT>/PARTNROFF=1`, how signpost tells the running set on the host), matched against
 * the build's partition table. A PARTUUID that is neither BOOT-A's nor BOOT-B's shows as itself.
 */
export function bootedSets(consoleText: string, build: VariantBuildResult): string[] {
  const manifest = JSON.parse(readFileSync(join(build.outputDir, buildManifestName), 'utf8')) as BuildManifest;
  const sets = new Map(manifest.disks.os.partitions.flatMap((partition) => {
    const set = /^BOOT-([AB])$/.exec(partition.key)?.[1];
    return set === undefined ? [] : [[partition.uniqueGuid.toLowerCase(), set] as const];
  }));
  return [...consoleText.matchAll(/Kernel command line: .*?PARTUUID=([0-9a-fA-F-]{36})\/PARTNROFF=1/g)].map(([, uuid]) => sets.get((uuid as string).toLowerCase()) ?? (uuid as string));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
