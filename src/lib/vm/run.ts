// `brl vm run`: prepares a VM's state directory, then supervises QEMU (and the API bridge) in the
// foreground, or in a detached supervisor process when the caller waits for API ready and returns.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { arch as hostArch } from 'node:process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BrlError, ExitCode } from '../core/errors.ts';
import { findOnPath } from '../doctor/host-tools.ts';
import { apiRequest } from '../host/apiclient/request.ts';
import type { Architecture } from '../variant/definition.ts';
import { chooseAccelerator, type Accelerator } from './accel.ts';
import { prepareDisk } from './disks.ts';
import { firmwareFiles, privateVars, type Firmware } from './firmware.ts';
import { checkRawDisk, imageAtPath, variantImage, type VmImage } from './image.ts';
import { qemuArgs, qemuSystemCommand, type Forward } from './qemu-args.ts';
import type { FirmwareCertificates } from '../secure-boot/key-set.ts';
import { lastLines, superviseVm, type VmSpec } from './supervise.ts';

export interface VmRunOptions {
  buildDir: string;
  variant?: string;
  image?: string;
  arch?: Architecture;
  firmware: Firmware;
  /** Boot with OVMF's Secure Boot build and these certificates enrolled as PK, KEK and db. */
  secureBoot?: FirmwareCertificates;
  accel: Accelerator | 'auto';
  memoryMiB: number;
  cpus: number;
  persist: boolean;
  /** Default: `<buildDir>/vm/<name>`. */
  stateDir?: string;
  /** Console to this file instead of the terminal. */
  consoleLog?: string;
  /** Keep the terminal free (e.g. under --json): the console goes to the state directory's log. */
  quietConsole: boolean;
  userData?: string;
  forwards: readonly Forward[];
  /** Default: `<stateDir>/api.sock` when the image has the API bridge. */
  apiSocket?: string;
  timeoutSeconds?: number;
  waitReady: boolean;
  say: (line: string) => void;
}

export interface VmRunResult {
  name: string;
  arch: Architecture;
  stateDir: string;
  accel: Accelerator;
  accelReason: string;
  firmware: Firmware;
  /** OVMF's Secure Boot build with the project's keys enrolled. */
  secureBoot: boolean;
  /** The supervisor: QEMU's parent, which serves the API bridge; SIGTERM stops the VM. */
  pid: number;
  apiSocket?: string;
  consoleLog: string;
  osDisk: string;
  dataDisk?: string;
  /** Set when brl waited for API ready. */
  readySeconds?: number;
  /** Set when the VM ran in the foreground and has ended. */
  exitCode?: number;
  /** The VM ran in the foreground until --timeout stopped it. */
  timedOut?: boolean;
}

const MAX_UNIX_SOCKET_PATH = 107;

function vmName(options: VmRunOptions, image: VmImage): string {
  return options.variant ?? image.variant ?? 'image';
}

/** A socket path in use by a live server is refused; a stale one is removed. */
export async function claimSocketPath(path: string): Promise<void> {
  if (Buffer.byteLength(path) > MAX_UNIX_SOCKET_PATH) {
    throw new BrlError(`API socket path ${path} is longer than the ${MAX_UNIX_SOCKET_PATH} bytes a Unix socket allows`, {
      hint: 'pass a shorter --api-socket', exitCode: ExitCode.badInput, code: 'SOCKET_PATH_TOO_LONG',
    });
  }
  if (!existsSync(path)) return;
  const live = await new Promise<boolean>((done) => {
    const socket = connect(path);
    socket.once('connect', () => { socket.destroy(); done(true); });
    socket.once('error', () => done(false));
  });
  if (live) {
    throw new BrlError(`API socket ${path} is busy: another program serves it`, {
      hint: 'stop that VM or server, or pass another --api-socket', exitCode: ExitCode.conflict, code: 'SOCKET_BUSY',
    });
  }
  await rm(path, { force: true });
}

async function refuseRunningVm(stateDir: string): Promise<void> {
  const pidFile = join(stateDir, 'supervisor.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(await readFile(pidFile, 'utf8'));
  let alive = false;
  try {
    process.kill(pid, 0);
    alive = true;
  } catch {
    // gone
  }
  if (alive) {
    throw new BrlError(`a VM already runs from ${stateDir} (pid ${pid})`, {
      hint: `stop it with: kill ${pid}; or pass another --state-dir`, exitCode: ExitCode.conflict, code: 'VM_RUNNING',
    });
  }
}

/** Everything that can be checked before QEMU starts, then the state directory. */
export async function prepareVm(options: VmRunOptions): Promise<VmSpec & { result: VmRunResult }> {
  const wantedArch = options.arch ?? (hostArch === 'arm64' ? 'aarch64' : 'x86_64');
  const qemuCommand = qemuSystemCommand(wantedArch);
  const qemu = findOnPath(qemuCommand);
  if (qemu === undefined) {
    const pkg = wantedArch === 'aarch64' ? 'qemu-system-arm' : 'qemu-system-x86';
    throw new BrlError(`${qemuCommand} is missing`, { hint: `install it with: apt-get install ${pkg}`, exitCode: ExitCode.missingTool, code: 'MISSING_HOST_TOOL' });
  }
  const firmware = firmwareFiles(options.firmware, {}, options.secureBoot !== undefined, wantedArch);
  if (options.image === undefined && options.variant === undefined) {
    throw new BrlError('name a variant or pass --image', { exitCode: ExitCode.usage, code: 'USAGE' });
  }
  const image = options.image !== undefined ? await imageAtPath(options.image) : await variantImage(options.buildDir, options.variant as string, wantedArch);
  if (image.arch !== undefined && image.arch !== wantedArch) {
    throw new BrlError(`${image.osImage} is an ${image.arch} image, not ${wantedArch}`, { hint: `pass --arch ${image.arch}`, exitCode: ExitCode.badInput, code: 'WRONG_ARCH' });
  }
  if (options.userData !== undefined && !existsSync(options.userData)) {
    throw new BrlError(`user data file ${options.userData} does not exist`, { exitCode: ExitCode.notFound, code: 'NOT_FOUND' });
  }
  const name = vmName(options, image);
  const stateDir = resolve(options.stateDir ?? join(options.buildDir, 'vm', name));
  await mkdir(stateDir, { recursive: true });
  await refuseRunningVm(stateDir);

  const os = await prepareDisk({ source: image.osImage, format: image.osFormat, stateDir, name: 'os', persist: options.persist });
  if (os.baseFormat === 'raw') {
    const kernel = await checkRawDisk(os.base, image.osImage);
    const kernelArch = kernel?.arch;
    if (kernelArch !== undefined && kernelArch !== wantedArch) {
      throw new BrlError(`${image.osImage} holds an ${kernelArch} kernel, not ${wantedArch}`, { hint: `pass --arch ${kernelArch}`, exitCode: ExitCode.badInput, code: 'WRONG_ARCH' });
    }
    // Booting the machine's arch on a guess would end in a firmware that finds nothing to run.
    if (kernel !== undefined && kernelArch === undefined && image.arch === undefined && options.arch === undefined) {
      throw new BrlError(`cannot tell the arch of ${image.osImage}: /vmlinuz on its BOOT-A is not an x86 bzImage, an arm64 Image (plain or gzip'd) or an EFI PE or zboot image of either arch`, {
        hint: 'pass --arch x86_64 or --arch aarch64', exitCode: ExitCode.badInput, code: 'UNKNOWN_KERNEL_ARCH',
      });
    }
  }
  const data = image.dataImage === undefined || image.dataFormat === undefined
    ? undefined
    : await prepareDisk({ source: image.dataImage, format: image.dataFormat, stateDir, name: 'data', persist: options.persist });

  const apiSocket = image.apiBridge ? resolve(options.apiSocket ?? join(stateDir, 'api.sock')) : undefined;
  if (apiSocket !== undefined) await claimSocketPath(apiSocket);
  if (options.waitReady && apiSocket === undefined) {
    throw new BrlError(`${image.osImage} has no API bridge, so brl cannot see when its API is ready`, {
      hint: 'the API bridge is the variant feature api-bridge (development variants only)', exitCode: ExitCode.badInput, code: 'NO_API_BRIDGE',
    });
  }
  const consoleLog = resolve(options.consoleLog ?? join(stateDir, 'console.log'));
  await rm(consoleLog, { force: true });
  const accel = chooseAccelerator(options.accel);
  const bridgeChannel = apiSocket === undefined ? undefined : join(stateDir, 'bridge.sock');
  const onTerminal = options.consoleLog === undefined && !options.quietConsole && !options.waitReady;
  const args = qemuArgs({
    name,
    arch: wantedArch,
    accel: accel.accel,
    firmware,
    ...(firmware.varsTemplate === undefined ? {} : { varsPath: await privateVars(firmware, stateDir, options.secureBoot) }),
    memoryMiB: options.memoryMiB,
    cpus: options.cpus,
    osDisk: { path: os.overlay, format: 'qcow2' },
    ...(data === undefined ? {} : { dataDisk: { path: data.overlay, format: 'qcow2' as const } }),
    console: onTerminal ? { kind: 'stdio', logFile: consoleLog } : { kind: 'file', path: consoleLog },
    ...(options.userData === undefined ? {} : { userData: resolve(options.userData) }),
    forwards: options.forwards,
    ...(bridgeChannel === undefined ? {} : { bridgeChannel }),
  });
  return {
    qemu,
    args,
    stateDir,
    consoleLog,
    onTerminal,
    ...(apiSocket === undefined ? {} : { apiSocket }),
    ...(bridgeChannel === undefined ? {} : { bridgeChannel }),
    // With --wait-ready the timeout bounds the wait for API ready (runDetached); a VM that got there
    // runs until it is stopped, so the supervisor gets no timer.
    ...(options.timeoutSeconds === undefined || options.waitReady ? {} : { timeoutSeconds: options.timeoutSeconds }),
    result: {
      name,
      arch: wantedArch,
      stateDir,
      accel: accel.accel,
      accelReason: accel.reason,
      firmware: options.firmware,
      secureBoot: options.secureBoot !== undefined,
      pid: process.pid,
      consoleLog,
      osDisk: os.overlay,
      ...(data === undefined ? {} : { dataDisk: data.overlay }),
      ...(apiSocket === undefined ? {} : { apiSocket }),
    },
  };
}

const supervisorMain = fileURLToPath(new URL(`./supervisor-main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

async function apiAnswers(socket: string): Promise<boolean> {
  try {
    return (await apiRequest(socket, 'GET', '/os')).status === 200;
  } catch {
    return false;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts the supervisor detached and returns once the guest API answers through the bridge. */
async function runDetached(spec: VmSpec & { result: VmRunResult }, timeoutSeconds: number): Promise<VmRunResult> {
  const specFile = join(spec.stateDir, 'vm.json');
  await writeFile(specFile, JSON.stringify(spec, null, 2));
  const log = openSync(join(spec.stateDir, 'supervisor.log'), 'w');
  const child = spawn(process.execPath, [supervisorMain, specFile], { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  child.unref();
  const pid = child.pid as number;
  const started = Date.now();
  const socket = spec.apiSocket as string;
  for (;;) {
    if (await apiAnswers(socket)) return { ...spec.result, pid, readySeconds: (Date.now() - started) / 1000 };
    const ended = !processAlive(pid);
    if (ended || Date.now() - started > timeoutSeconds * 1000) {
      if (!ended) process.kill(pid, 'SIGTERM');
      const console = existsSync(spec.consoleLog) ? lastLines(readFileSync(spec.consoleLog, 'utf8'), 15) : '(no console output)';
      throw new BrlError(`the VM ${ended ? 'stopped' : `did not reach API ready within ${timeoutSeconds} s`} before its API answered; last console lines:\n${console}`, {
        hint: `the whole console is in ${spec.consoleLog}`, exitCode: ExitCode.failure, code: 'VM_NOT_READY',
      });
    }
    await new Promise((done) => setTimeout(done, 500));
  }
}

export const DEFAULT_READY_TIMEOUT_SECONDS = 300;

export async function runVm(options: VmRunOptions): Promise<VmRunResult> {
  const spec = await prepareVm(options);
  const uefiBuild = spec.result.arch === 'aarch64' ? 'AAVMF' : 'OVMF';
  options.say(`booting ${spec.result.name} under ${spec.result.accelReason}, ${options.firmware === 'uefi' ? `UEFI (${uefiBuild}${options.secureBoot === undefined ? '' : ', Secure Boot with the project\'s keys'})` : 'BIOS (SeaBIOS)'}; state in ${spec.stateDir}`);
  if (options.waitReady) return runDetached(spec, options.timeoutSeconds ?? DEFAULT_READY_TIMEOUT_SECONDS);
  const end = await superviseVm(spec);
  if (end.timedOut) options.say(`stopped the VM after --timeout ${options.timeoutSeconds} s`);
  return { ...spec.result, ...end };
}
