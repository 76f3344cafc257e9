// Power loss during an update on a running host: a VM of A is driven through the API into one phase of
// the update to B, QEMU is SIGKILLed at a seeded point of it, and the VM is started again from the same
// disks. The host must come up (on a bank dm-verity accepts, or verity-init would reboot forever)
// and answer its API. Shared by test/vm/power-loss.test.ts (a few points) and bench/power-loss.ts (many).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UpdateRelease } from './update-release.ts';
import { startVm, type BootedVm } from './vm.ts';

/** Where the plug is pulled: streaming B's images, the end of prepare (writes verified, B marked valid), the flag flip, the reboot into B. */
export const POWER_LOSS_PHASES = ['download', 'mark-valid', 'activate', 'reboot'] as const;
export type PowerLossPhase = (typeof POWER_LOSS_PHASES)[number];

export interface PowerLossPoint {
  run: number;
  phase: PowerLossPhase;
  /** Milliseconds after the phase's API request was answered. */
  delayMs: number;
}

/** How long each phase took on an undisturbed run, measured by calibrate(). */
export interface PhaseTimings {
  prepareMs: number;
  activateMs: number;
  /** From POST /actions/reboot to B's API answering. */
  rebootMs: number;
}

export interface PowerLossOutcome extends PowerLossPoint {
  /** The host answered its API again after the cut. */
  cameUp: boolean;
  /** The release it came up on. */
  version?: string;
  readySeconds?: number;
  /** The failure the host reported in /updates/status, if any. */
  failedUpdate?: string;
  error?: string;
  /** What `sgdisk -v` found wrong with the OS disk once the host was back (empty: both GPT copies sound). */
  gptProblems?: string;
  stateDir: string;
}

/** mulberry32: small, seedable, the same sequence everywhere. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

/** `runs` points, the phases in turn, each delay drawn from the seed inside the phase's measured window. */
export function powerLossPoints(seed: number, runs: number, timings: PhaseTimings): PowerLossPoint[] {
  const next = random(seed);
  const windows: Record<PowerLossPhase, [number, number]> = {
    download: [0, timings.prepareMs * 0.9],
    'mark-valid': [timings.prepareMs * 0.9, timings.prepareMs * 1.05],
    activate: [0, timings.activateMs + 500],
    reboot: [0, timings.rebootMs],
  };
  return Array.from({ length: runs }, (_, run) => {
    const phase = POWER_LOSS_PHASES[run % POWER_LOSS_PHASES.length]!;
    const [low, high] = windows[phase];
    return { run, phase, delayMs: Math.round(low + next() * (high - low)) };
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function post(vm: BootedVm, path: string): Promise<void> {
  const response = await vm.api('POST', path);
  if (response.status !== 204) throw new Error(`POST ${path}: ${response.status} ${response.body}`);
}

/** Waits until the update action `command` has finished (status readable again and it is the most recent). */
async function actionDone(vm: BootedVm, command: string, seconds: number): Promise<void> {
  for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline; await sleep(200)) {
    const response = await vm.api('GET', '/updates/status');
    if (response.status !== 200) continue;
    const recent = (JSON.parse(response.body) as { most_recent_command: { cmd_type: string; cmd_status: string; stderr: string } | null }).most_recent_command;
    if (recent?.cmd_type !== command) continue;
    if (recent.cmd_status !== 'Success') throw new Error(`${command} failed: ${recent.stderr}`);
    return;
  }
  throw new Error(`${command} did not finish within ${seconds} s`);
}

async function version(vm: BootedVm): Promise<string> {
  return (JSON.parse((await vm.api('GET', '/os')).body) as { version_id: string }).version_id;
}

/** A stopped VM of A that has booted once (first-boot work done), to copy for every run. */
export async function goldenState(release: UpdateRelease, firmware: 'uefi' | 'bios' = 'uefi'): Promise<string> {
  const stateDir = mkdtempSync(join(tmpdir(), 'brl-power-golden-'));
  try {
    const vm = await startVm({ image: osImage(release), firmware, userData: release.userData, forwards: [release.forward], resume: stateDir });
    await vm.stop();
  } catch (error) {
    rmSync(stateDir, { recursive: true, force: true });
    throw error;
  }
  return stateDir;
}

function osImage(release: UpdateRelease): string {
  const disk = release.a.artifacts.find((artifact) => artifact.kind === 'os-disk');
  if (disk === undefined) throw new Error('A has no OS disk');
  return join(release.a.outputDir, disk.file);
}

/** `sgdisk -v` of the VM's OS disk as it now stands: '' when it finds no problems, else its report. */
function gptProblems(stateDir: string): string {
  const raw = join(stateDir, 'os-check.raw');
  try {
    execFileSync('qemu-img', ['convert', '-O', 'raw', join(stateDir, 'os.qcow2'), raw]);
    let report: string;
    try {
      report = execFileSync('sgdisk', ['-v', raw], { encoding: 'utf8' });
    } catch (error) {
      report = `${(error as { stdout?: string }).stdout ?? ''}${(error as Error).message}`;
    }
    return /No problems found/.test(report) ? '' : report.trim();
  } finally {
    rmSync(raw, { force: true });
  }
}

function copyState(golden: string): string {
  const stateDir = mkdtempSync(join(tmpdir(), 'brl-power-run-'));
  execFileSync('cp', ['-a', '--sparse=always', `${golden}/.`, stateDir]);
  return stateDir;
}

/** A copy of the golden VM booted, with the update found by a refresh. */
async function bootRefreshed(release: UpdateRelease, golden: string, firmware: 'uefi' | 'bios') {
  const stateDir = copyState(golden);
  const boot = { image: osImage(release), firmware, userData: release.userData, forwards: [release.forward], resume: stateDir };
  const vm = await startVm(boot);
  try {
    await post(vm, '/actions/refresh-updates');
    await actionDone(vm, 'refresh', 120);
  } catch (error) {
    await vm.stop();
    throw error;
  }
  return { stateDir, boot, vm };
}

/** One undisturbed update A→B from the golden state, timing each phase. */
export async function calibrate(release: UpdateRelease, golden: string, firmware: 'uefi' | 'bios' = 'uefi'): Promise<PhaseTimings & { stateDir: string }> {
  const { stateDir, vm } = await bootRefreshed(release, golden, firmware);
  try {
    let started = Date.now();
    await post(vm, '/actions/prepare-update');
    await actionDone(vm, 'prepare', 600);
    const prepareMs = Date.now() - started;
    started = Date.now();
    await post(vm, '/actions/activate-update');
    await actionDone(vm, 'activate', 120);
    const activateMs = Date.now() - started;
    started = Date.now();
    await post(vm, '/actions/reboot');
    await vm.waitForConsole(/verity-init: verified root mounted read-only/, 2, 420);
    await vm.waitForApi(420);
    const rebootMs = Date.now() - started;
    if ((await version(vm)) !== release.b.version) throw new Error(`the undisturbed update came up on ${await version(vm)}`);
    return { prepareMs, activateMs, rebootMs, stateDir };
  } finally {
    await vm.stop();
  }
}

/** Drives a copy of the golden VM to `point`, pulls the plug, starts it again and reports what came up. */
export async function powerLossRun(release: UpdateRelease, golden: string, point: PowerLossPoint, firmware: 'uefi' | 'bios' = 'uefi'): Promise<PowerLossOutcome> {
  const { stateDir, boot, vm } = await bootRefreshed(release, golden, firmware);
  try {
    if (point.phase === 'download' || point.phase === 'mark-valid') {
      await post(vm, '/actions/prepare-update');
    } else {
      await post(vm, '/actions/prepare-update');
      await actionDone(vm, 'prepare', 600);
      await post(vm, '/actions/activate-update');
      if (point.phase === 'reboot') {
        await actionDone(vm, 'activate', 120);
        await post(vm, '/actions/reboot');
      }
    }
    await sleep(point.delayMs);
    await vm.powerOff();
  } catch (error) {
    await vm.stop();
    throw error;
  }
  try {
    const after = await startVm(boot);
    try {
      const status = await after.api('GET', '/updates/status');
      const failedUpdate = status.status === 200 ? (JSON.parse(status.body) as { failed_update?: { reason: string } | null }).failed_update?.reason : undefined;
      const outcome = { ...point, cameUp: true, version: await version(after), readySeconds: after.readySeconds, ...(failedUpdate ? { failedUpdate } : {}), stateDir };
      await after.stop();
      return { ...outcome, gptProblems: gptProblems(stateDir) };
    } finally {
      await after.stop();
    }
  } catch (error) {
    return { ...point, cameUp: false, error: (error as Error).message.slice(-2000), stateDir };
  }
}
