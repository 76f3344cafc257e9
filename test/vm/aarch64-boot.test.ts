// The aarch64 dev image, cross-built on this machine, under qemu-system-aarch64 (virt, AAVMF, TCG):
// AAVMF → GRUB's BOOTAA64.EFI with gptprio → verity-init → systemd → API ready through the bridge;
// and a flipped byte in ROOT-A stops that boot before anything from the root runs. One VM at a time.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brl } from '../helpers/cli.ts';
import { devBuilder, osDiskOf, tamperedOsDisk } from '../helpers/dev-image.ts';
import { bootVm } from '../helpers/vm.ts';
import type { VariantBuildResult } from '../../src/lib/variant/build.ts';

const buildDev = devBuilder('vm-aarch64', 'aarch64');
let built: Promise<VariantBuildResult> | undefined;
const devImage = (): Promise<VariantBuildResult> => (built ??= buildDev());

test.serial('the aarch64 dev image boots under TCG through GRUB arm64-efi and its dm-verity root to API ready, with node running as arm64', async (t) => {
  const vm = await bootVm(t, { image: osDiskOf(await devImage()), arch: 'aarch64' });
  t.log(`API ready after ${vm.readySeconds.toFixed(1)} s (TCG, AAVMF)`);
  // apiserver reports the arch its own Node.js runs as: the image's arm64 build, not an x86_64 one.
  const os = JSON.parse((await vm.api('GET', '/os')).body) as { variant_id: string; arch: string };
  t.is(os.variant_id, 'dev');
  t.is(os.arch, 'aarch64');
  // The serial port is the PL011 the kernel finds through ACPI's SPCR table; console=ttyS0 names no
  // device on virt, so systemd's status lines after journald starts go to tty0, not to this log.
  const consoleText = vm.console();
  const steps = [/Booting `Bottlerocket OS/, /EFI stub: Booting Linux Kernel/, /verity-init: verified root mounted read-only \(ext4\)/, /systemd\[1\]: systemd 252/];
  const positions = steps.map((step) => consoleText.search(step));
  t.true(positions.every((position) => position >= 0), `missing on the console: ${steps.filter((_, i) => (positions[i] ?? -1) < 0).join(', ')}`);
  t.deepEqual([...positions].sort((a, b) => a - b), positions, 'the boot steps appear in order');
});

test.serial('one flipped byte in the aarch64 ROOT-A: dm-verity stops the boot before any program from the root runs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-vm-aarch64-verity-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const raw = await tamperedOsDisk(await devImage(), dir);
  const consoleLog = join(dir, 'console.log');
  const run = await brl(['vm', 'run', '--image', raw, '--arch', 'aarch64', '--accel', 'tcg', '--state-dir', join(dir, 'state'), '--console-log', consoleLog, '--timeout', '90', '--json']);
  t.is(run.exitCode, 0, `${run.stdout}${run.stderr}`);
  const tampered = readFileSync(consoleLog, 'latin1');
  t.regex(tampered, /verity: .*data block 0 is corrupted/);
  t.notRegex(tampered, /verified root mounted/);
  t.notRegex(tampered, /systemd\[1\]/);
});
