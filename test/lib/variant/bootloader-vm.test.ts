// GRUB in a real boot: the dev image under QEMU (TCG) with OVMF and with SeaBIOS uses up a staged bank's try, then falls back to A and starts its kernel.
import test, { type ExecutionContext } from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readGpt, withAttributes, writeGpt } from '../../../src/lib/image/gpt.ts';
import { decodeGptPrio, encodeGptPrio, FRESH_BOOT_A_ATTRIBUTES, type GptPrioFlags } from '../../../src/lib/image/gptprio.ts';
import { devBuilder, osDiskOf } from '../../helpers/dev-image.ts';

const run = promisify(execFile);
const ovmfCode = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const ovmfVars = '/usr/share/OVMF/OVMF_VARS_4M.fd';
const seabios = '/usr/share/seabios/bios.bin';
const canBoot = ['/usr/bin/qemu-system-x86_64', ovmfCode, ovmfVars, seabios].every((path) => existsSync(path));

// The dev image under its own build id (see test/helpers/dev-image.ts).
const buildDev = devBuilder('vm-gptprio');
const scratch = mkdtempSync(join(tmpdir(), 'brl-grub-vm-'));
const running = new Set<ChildProcess>();
test.after.always(() => {
  for (const qemu of running) qemu.kill('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});

// BOOT-A and BOOT-B of the A/B layout, and where B's GPT entry lies (primary array at LBA 2).
const BOOT_A = 3;
const BOOT_B = 8;
const STAGED_B: GptPrioFlags = { priority: 2, triesLeft: 1, successful: false };
const entryAttributesOffset = (number: number): number => 2 * 512 + (number - 1) * 128 + 48;

let baseImage: Promise<string> | undefined;

/** The dev image as a raw file with BOOT-B staged for an update (priority 2, one try, not successful). */
function stagedImage(): Promise<string> {
  baseImage ??= (async () => {
    const raw = join(scratch, 'dev.img');
    await run('lz4', ['-dqf', osDiskOf(await buildDev()), raw]);
    const { table } = await readGpt(raw);
    await writeGpt(raw, withAttributes(table, BOOT_B, encodeGptPrio(0n, STAGED_B)));
    return raw;
  })();
  return baseImage;
}

/** BOOT-B's gptprio flags in the overlay's primary GPT, read while QEMU may still be writing it. */
async function bootBFlags(overlay: string, dir: string): Promise<GptPrioFlags> {
  const head = join(dir, 'head.raw');
  await run('qemu-img', ['dd', '-U', '-f', 'qcow2', '-O', 'raw', `if=${overlay}`, `of=${head}`, 'bs=1M', 'count=1']);
  return decodeGptPrio(readFileSync(head).readBigUInt64LE(entryAttributesOffset(BOOT_B)));
}

interface Boot {
  overlay: string;
  console: string;
  dir: string;
  /** BOOT-A's PARTUUID, which GRUB puts into the kernel command line through $boot_uuid. */
  bootAUuid: string;
}

/**
 * Boots the staged image until GRUB has used B's try and, after B fails (bank B is empty) and
 * GRUB reboots, the kernel of bank A has printed its command line; then stops QEMU.
 */
async function boot(t: ExecutionContext, firmware: 'uefi' | 'bios'): Promise<Boot> {
  const base = await stagedImage();
  const bootAUuid = (await readGpt(base)).table.partitions.find((partition) => partition.number === BOOT_A)!.uniqueGuid.toLowerCase();
  const dir = mkdtempSync(join(scratch, `${firmware}-`));
  const overlay = join(dir, 'overlay.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', base, overlay]);
  const consoleLog = join(dir, 'console.log');
  const firmwareArgs: string[] = [];
  if (firmware === 'uefi') {
    const vars = join(dir, 'OVMF_VARS.fd');
    copyFileSync(ovmfVars, vars);
    firmwareArgs.push('-drive', `if=pflash,format=raw,readonly=on,file=${ovmfCode}`, '-drive', `if=pflash,format=raw,file=${vars}`);
  } else {
    firmwareArgs.push('-bios', seabios);
  }
  const qemu = spawn('qemu-system-x86_64', [
    '-machine', 'pc', '-accel', 'tcg', '-m', '1024', '-nographic', '-monitor', 'none', '-serial', `file:${consoleLog}`, '-nic', 'none',
    ...firmwareArgs,
    // writethrough: each guest write reaches the qcow2 file with its metadata, so the test can watch it.
    '-drive', `file=${overlay},format=qcow2,if=ide,cache=writethrough`,
  ], { stdio: 'ignore' });
  running.add(qemu);
  const exited = new Promise<void>((resolve) => qemu.once('exit', () => resolve()));
  t.teardown(() => {
    qemu.kill('SIGKILL');
  });
  const started = Date.now();
  const deadline = started + 480_000;
  const seconds = (): string => ((Date.now() - started) / 1000).toFixed(1);
  const pause = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 2000));
  while ((await bootBFlags(overlay, dir)).triesLeft > 0 && Date.now() < deadline && qemu.exitCode === null) await pause();
  t.log(`${firmware}: GRUB used BOOT-B's try after ${seconds()} s`);
  const kernelOfA = new RegExp(`Command line: .*PARTUUID=${bootAUuid}/PARTNROFF=1`);
  const console = (): string => (existsSync(consoleLog) ? readFileSync(consoleLog, 'utf8') : '');
  while (!kernelOfA.test(console()) && Date.now() < deadline && qemu.exitCode === null) await pause();
  t.log(`${firmware}: bank A's kernel started after ${seconds()} s`);
  qemu.kill('SIGTERM');
  await exited;
  running.delete(qemu);
  return { overlay, console: console(), dir, bootAUuid };
}

async function assertGrubUsedBsTry(t: ExecutionContext, overlay: string, dir: string): Promise<void> {
  const raw = join(dir, 'after.raw');
  await run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', overlay, raw]);
  const { table, problems } = await readGpt(raw);
  const flagsOf = (number: number): GptPrioFlags => decodeGptPrio(table.partitions.find((partition) => partition.number === number)!.attributes);
  t.deepEqual(flagsOf(BOOT_B), { ...STAGED_B, triesLeft: 0 }, 'GRUB chose B and wrote its used try back');
  t.is(table.partitions.find((partition) => partition.number === BOOT_A)!.attributes, FRESH_BOOT_A_ATTRIBUTES);
  t.deepEqual(problems, []);
  const { stdout } = await run('sgdisk', ['-v', raw]);
  t.regex(stdout, /No problems found/);
}

/** What the kernel of bank A shows about GRUB's part: A's grub.cfg, $boot_uuid, and PRIVATE's bootconfig as its initrd. */
function assertKernelOfA(t: ExecutionContext, booted: Boot): void {
  t.regex(booted.console, new RegExp(`Command line: BOOT_IMAGE=\\(hd0,gpt${BOOT_A}\\)/vmlinuz .*PARTUUID=${booted.bootAUuid}/PARTNROFF=2`));
  t.regex(booted.console, /RAMDISK: \[mem /, 'the initrd ($private)/bootconfig.data was loaded');
  t.notRegex(booted.console, /error: no server is specified/, 'every device GRUB opened exists');
}

const vmTest = canBoot ? test : test.skip;

vmTest('UEFI: OVMF starts BOOTX64.EFI from EFI-SYSTEM; GRUB uses up staged BOOT-B\'s try, then boots bank A', async (t) => {
  t.timeout(900_000);
  const booted = await boot(t, 'uefi');
  await assertGrubUsedBsTry(t, booted.overlay, booted.dir);
  // Bank B was never written (it stays empty until an update), so GRUB finds no grub.cfg there, says so and reboots.
  t.regex(booted.console, /brl: no bootable BOOT partition, or its grub\.cfg did not boot/);
  assertKernelOfA(t, booted);
});

vmTest('BIOS: SeaBIOS runs boot.img from the MBR and core.img from BIOS-BOOT; GRUB uses up staged BOOT-B\'s try, then boots bank A', async (t) => {
  t.timeout(900_000);
  const booted = await boot(t, 'bios');
  await assertGrubUsedBsTry(t, booted.overlay, booted.dir);
  assertKernelOfA(t, booted);
});
