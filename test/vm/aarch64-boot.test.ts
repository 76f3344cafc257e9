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

test.serial('the aarch64 dev image boots under TCG through GRUB arm64-efi and its dm-verity root to API ready, with node running as arm64 and systemd\'s status on the serial console', async (t) => {
  const vm = await bootVm(t, { image: osDiskOf(await devImage()), arch: 'aarch64' });
  t.log(`API ready after ${vm.readySeconds.toFixed(1)} s (TCG, AAVMF)`);
  // apiserver reports the arch its own Node.js runs as: the image's arm64 build, not an x86_64 one.
  const os = JSON.parse((await vm.api('GET', '/os')).body) as { variant_id: string; arch: string };
  t.is(os.variant_id, 'dev');
  t.is(os.arch, 'aarch64');
  // The serial port is virt's PL011: the variant's aarch64 kernel parameters name it last
  // (console=ttyAMA0), so it is /dev/console and systemd's status lines reach this log after
  // journald has taken over its logging too, up to the end of the boot.
  const consoleText = vm.console();
  t.regex(consoleText, /Kernel command line: .*console=tty0 console=ttyAMA0,115200n8 net\.ifnames=0 /);
  const steps = [
    /Booting `Bottlerocket OS/,
    /EFI stub: Booting Linux Kernel/,
    /verity-init: verified root mounted read-only \(ext4\)/,
    /systemd\[1\]: systemd 252/,
    // systemd's own status lines (to /dev/console only), cut in the middle past 80 columns: units
    // whose lines are short.
    /\[ {2}OK {2}\] Started systemd-journald\.service/,
    /\[ {2}OK {2}\] Finished storewolf\.service/,
    /\[ {2}OK {2}\] Started apiserver\.service/,
    /\[ {2}OK {2}\] Finished sundog\.service/,
    /\[ {2}OK {2}\] Reached target multi-user\.target/,
  ];
  const positions = steps.map((step) => consoleText.search(step));
  const statusLines = consoleText.split('\n').filter((line) => /\] (Started|Finished|Reached)/.test(line)).join('\n');
  t.true(positions.every((position) => position >= 0), `missing on the console: ${steps.filter((_, i) => (positions[i] ?? -1) < 0).join(', ')}\nstatus lines:\n${statusLines}`);
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
