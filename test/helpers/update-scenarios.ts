// The update and fallback scenarios of the VM suite, for either arch: test/vm/update.test.ts and
// fallback.test.ts run them on x86_64, aarch64-update.test.ts and aarch64-fallback.test.ts on aarch64
// (with fewer boots: each costs 1.5-3 min there under TCG).
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { VariantBuildResult } from '../../src/lib/variant/build.ts';
import { buildManifestName, type BuildManifest } from '../../src/lib/variant/build-manifest.ts';
import { osDiskOf } from './dev-image.ts';
import type { UpdateRelease } from './update-release.ts';
import { bootedSets, bootVm, patience, type BootedVm } from './vm.ts';

interface Status {
  update_state: string;
  active_partition?: { image: { version: string; arch: string }; next_to_boot: boolean };
  staging_partition?: { image: { version: string }; next_to_boot: boolean } | null;
  failed_update?: { image: { version: string } | null; partition_set: string } | null;
}

const osVersion = async (vm: BootedVm): Promise<string> => (JSON.parse((await vm.api('GET', '/os')).body) as { version_id: string }).version_id;
const updateStatus = async (vm: BootedVm): Promise<Status> => JSON.parse((await vm.api('GET', '/updates/status')).body) as Status;

export interface UpdateSteps {
  /** Cancel the first applied update and reboot, staying on A, before applying it again. */
  cancelFirst: boolean;
  /** Reboot once more on B, which must stay on B (mark-successful-boot ran). */
  stayOnB: boolean;
}

/**
 * A host of `release.a` (0.1.0) updated to B (0.1.1) through its API only: check, apply, reboot into B,
 * then the rollback action back to A. Every boot's partition set is read from the guest's own kernel
 * command line (`bootedSets`); versions from `/os` and `/updates/status`.
 */
export async function updateThroughApi(t: ExecutionContext, release: UpdateRelease, steps: UpdateSteps): Promise<void> {
  const { a, forward, userData, requests } = release;
  const arch = a.arch;
  const vm = await bootVm(t, { image: osDiskOf(a), arch, userData, forwards: [forward] });
  t.log(`API ready on A after ${vm.readySeconds.toFixed(1)} s`);
  const sets = (): string[] => bootedSets(vm.console(), a);
  t.is(await osVersion(vm), '0.1.0');
  t.deepEqual(sets(), ['A']);

  const check = JSON.parse((await vm.apiclient('update', 'check')).stdout) as { update_state: string; chosen_update?: { version: string; arch: string } };
  t.is(check.update_state, 'Available', JSON.stringify(check));
  t.is(check.chosen_update?.version, '0.1.1');
  t.is(check.chosen_update?.arch, arch, 'the update is for the host\'s arch');
  let started = Date.now();
  await vm.apiclient('update', 'apply');
  t.log(`apply (download and write of bank B under TCG): ${((Date.now() - started) / 1000).toFixed(0)} s`);
  t.true(requests.some((path) => /root\.ext4\.lz4/.test(path)), requests.join('\n'));
  t.true(requests.some((path) => path.startsWith(`/dev/${arch}/`)), `the ${arch} metadata was read: ${requests.join('\n')}`);
  const ready = await updateStatus(vm);
  t.is(ready.update_state, 'Ready');
  t.is(ready.staging_partition?.image.version, '0.1.1');
  t.is(ready.staging_partition?.next_to_boot, true);

  if (steps.cancelFirst) {
    // Cancelled before the reboot: the host stays on A.
    await vm.apiclient('update', 'cancel');
    t.is((await updateStatus(vm)).update_state, 'Staged');
    await vm.reboot();
    t.is(await osVersion(vm), '0.1.0');
    t.deepEqual(sets(), ['A', 'A']);

    // Applied again, the reboot comes up on B; mark-successful-boot ran before the bridge came up,
    // so another reboot stays on B.
    // The update status lives in /run, as upstream's: a new boot starts with a check.
    t.is((await vm.api('GET', '/updates/status')).status, 404);
    t.is((JSON.parse((await vm.apiclient('update', 'check')).stdout) as { update_state: string }).update_state, 'Available');
    started = Date.now();
    await vm.apiclient('update', 'apply');
    t.log(`second apply: ${((Date.now() - started) / 1000).toFixed(0)} s`);
    t.is((await updateStatus(vm)).update_state, 'Ready');
  }
  started = Date.now();
  await vm.reboot();
  t.log(`reboot into B to API ready: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  t.is(await osVersion(vm), '0.1.1');
  t.is(sets().at(-1), 'B', 'GRUB booted set B');
  // The host's own view after the update: 0.1.1 runs, from the set it boots next, nothing failed.
  t.is((await vm.api('GET', '/updates/status')).status, 404, 'a new boot starts without an update status');
  t.is((JSON.parse((await vm.apiclient('update', 'check')).stdout) as { update_state: string }).update_state, 'Idle', 'nothing newer than 0.1.1');
  const onB = await updateStatus(vm);
  t.is(onB.active_partition?.image.version, '0.1.1');
  t.is(onB.active_partition?.image.arch, arch);
  t.is(onB.active_partition?.next_to_boot, true);
  t.falsy(onB.failed_update);
  if (steps.stayOnB) {
    await vm.reboot();
    t.is(await osVersion(vm), '0.1.1');
    t.is(sets().at(-1), 'B');
  }

  // brl's rollback action (upstream runs signpost from the admin container): back to A.
  t.is((await vm.api('POST', '/actions/rollback-to-inactive')).status, 204);
  await vm.reboot();
  t.is(await osVersion(vm), '0.1.0');
  t.is(sets().at(-1), 'A', 'GRUB booted set A after the rollback');
  t.log(`partition sets booted: ${sets().join(' → ')}`);
}

export function partitionStart(result: VariantBuildResult, key: string): number {
  const manifest = JSON.parse(readFileSync(join(result.outputDir, buildManifestName), 'utf8')) as BuildManifest;
  const partition = manifest.disks.os.partitions.find((candidate) => candidate.key === key);
  if (partition === undefined) throw new Error(`no ${key} in the build manifest`);
  return partition.startMiB * 1024 * 1024;
}

const mounts = (text: string): number => (text.match(/verity-init: verified root mounted read-only/g) ?? []).length;

/** Damage to a staged B, written into the VM's OS disk (qcow2 overlay) while it is off. */
export type Damage = (release: UpdateRelease, osDisk: string) => void;

/** One byte of ROOT-B's ext4 superblock: dm-verity refuses the root. */
export const damageRootB: Damage = ({ a }, osDisk) => {
  const offset = partitionStart(a, 'ROOT-B') + 1024 + 0x78;
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -P 0xa5 ${offset} 1`, osDisk], { stdio: 'ignore' });
};

/**
 * The first block of BOOT-B's vmlinuz (B's boot image is what updog wrote there): its headers are
 * gone (the bzImage's on x86_64, the arm64 Image's and PE's on aarch64), so GRUB's `linux` refuses
 * it. `work` holds B's boot image, decompressed to find the block.
 */
export function damageKernelB(work: string): Damage {
  return ({ a, b }, osDisk) => {
    const bootImage = b.artifacts.find((artifact) => artifact.kind === 'boot-image');
    if (bootImage === undefined) throw new Error('B has no boot image');
    const boot = join(work, `boot-b-${process.pid}.ext4`);
    execFileSync('lz4', ['-dqf', join(b.outputDir, bootImage.file), boot]);
    const block = Number(/(\d+)/.exec(execFileSync('debugfs', ['-R', 'bmap /vmlinuz 0', boot], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))?.[1]);
    if (!Number.isInteger(block) || block <= 0) throw new Error('no block for /vmlinuz in BOOT-B');
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -z ${partitionStart(a, 'BOOT-B') + block * 4096} 4096`, osDisk], { stdio: 'ignore' });
  };
}

/**
 * Stages B through the API, stops the VM, lets `damage` write into its disk, starts it again and
 * checks the host came up on A (GRUB tried B first); then updates it to B once more. Returns the
 * second run's console up to API ready on A.
 */
export async function fallsBack(t: ExecutionContext, setup: UpdateRelease, damage: Damage): Promise<string> {
  const arch = setup.a.arch;
  const boot = (resume?: string): Promise<BootedVm> => bootVm(t, { image: osDiskOf(setup.a), arch, userData: setup.userData, forwards: [setup.forward], ...(resume ? { resume } : {}) });
  const first = await boot();
  await first.apiclient('update', 'apply', '--check');
  t.is((await updateStatus(first)).update_state, 'Ready');
  await first.stop();
  damage(setup, join(first.stateDir, 'os.qcow2'));

  const second = await boot(first.stateDir);
  t.log(`API ready on A after B's failed boot: ${second.readySeconds.toFixed(1)} s`);
  t.is(await osVersion(second), '0.1.0');
  // The host says why it is still on A, before anyone asks it to check for updates.
  const reported = await second.api('GET', '/updates/status');
  t.is(reported.status, 200, reported.body);
  const failed = (JSON.parse(reported.body) as Status).failed_update;
  t.is(failed?.image?.version, '0.1.1', reported.body);
  t.is(failed?.partition_set, 'B');
  const consoleText = second.console();
  // gptprio chose B first (the kernel printed its command line if it started), then A.
  t.is(bootedSets(consoleText, setup.a).at(-1), 'A', 'the boot that reached the API ran from A');

  // The host still updates: B is written again, activated, and boots.
  await second.apiclient('update', 'apply', '--check');
  await second.apiclient('reboot');
  await second.waitForConsole(/verity-init: verified root mounted read-only/, mounts(consoleText) + 1, patience(arch) * 300);
  await second.waitForApi(patience(arch) * 300);
  t.is(await osVersion(second), '0.1.1');
  t.is(bootedSets(second.console(), setup.a).at(-1), 'B');
  return consoleText;
}
