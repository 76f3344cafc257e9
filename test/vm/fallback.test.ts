// Bottlerocket's fallback promise on a running host: an update that cannot boot is abandoned by the
// boot loader itself. B is staged and activated through the API, then damaged while the VM is off
// (one byte of ROOT-B's superblock, or the first block of BOOT-B's kernel); at the next start GRUB
// tries B, the boot fails (dm-verity, or GRUB cannot load the kernel), gptprio has spent B's only
// try, and the host comes up on A — reports the update that failed — and a new update can still be applied.
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VariantBuildResult } from '../../src/lib/variant/build.ts';
import { buildManifestName, type BuildManifest } from '../../src/lib/variant/build-manifest.ts';
import { devBuilder, osDiskOf } from '../helpers/dev-image.ts';
import { makeUpdateRelease, type UpdateRelease } from '../helpers/update-release.ts';
import { bootVm } from '../helpers/vm.ts';

const buildA = devBuilder('vmfallbacka');
const buildB = devBuilder('vmfallbackb');

let release: Promise<UpdateRelease> | undefined;
const work = mkdtempSync(join(tmpdir(), 'brl-vm-fallback-'));
test.after.always(async () => {
  await (await release?.catch(() => undefined))?.server.close();
  rmSync(work, { recursive: true, force: true });
});

/** A (0.1.0) and B (0.1.1) built, B in a signed repository served on 127.0.0.1: once per file. */
function setUp(): Promise<UpdateRelease> {
  release ??= makeUpdateRelease(work, buildA, buildB);
  return release;
}

function partitionStart(result: VariantBuildResult, key: string): number {
  const manifest = JSON.parse(readFileSync(join(result.outputDir, buildManifestName), 'utf8')) as BuildManifest;
  const partition = manifest.disks.os.partitions.find((candidate) => candidate.key === key);
  if (partition === undefined) throw new Error(`no ${key} in the build manifest`);
  return partition.startMiB * 1024 * 1024;
}

const mounts = (text: string): number => (text.match(/verity-init: verified root mounted read-only/g) ?? []).length;

/**
 * Stages B through the API, stops the VM, lets `damage` write into its disk, starts it again and
 * checks the host came up on A; then updates it to B once more. Returns the second run's console.
 */
async function fallsBack(t: ExecutionContext, damage: (setup: UpdateRelease, osDisk: string) => void): Promise<string> {
  const setup = await setUp();
  const boot = (resume?: string) => bootVm(t, { image: osDiskOf(setup.a), userData: setup.userData, forwards: [setup.forward], ...(resume ? { resume } : {}) });
  const first = await boot();
  await first.apiclient('update', 'apply', '--check');
  t.is((JSON.parse((await first.api('GET', '/updates/status')).body) as { update_state: string }).update_state, 'Ready');
  await first.stop();
  damage(setup, join(first.stateDir, 'os.qcow2'));

  const second = await boot(first.stateDir);
  t.log(`API ready on A after B's failed boot: ${second.readySeconds.toFixed(1)} s`);
  t.is((JSON.parse((await second.api('GET', '/os')).body) as { version_id: string }).version_id, '0.1.0');
  // The host says why it is still on A, before anyone asks it to check for updates.
  const reported = await second.api('GET', '/updates/status');
  t.is(reported.status, 200, reported.body);
  const failed = (JSON.parse(reported.body) as { failed_update?: { image: { version: string } | null; partition_set: string } }).failed_update;
  t.is(failed?.image?.version, '0.1.1', reported.body);
  t.is(failed?.partition_set, 'B');
  const consoleText = second.console();

  // The host still updates: B is written again, activated, and boots.
  await second.apiclient('update', 'apply', '--check');
  await second.apiclient('reboot');
  await second.waitForConsole(/verity-init: verified root mounted read-only/, mounts(consoleText) + 1, 300);
  await second.waitForApi(300);
  t.is((JSON.parse((await second.api('GET', '/os')).body) as { version_id: string }).version_id, '0.1.1');
  return consoleText;
}

test('a staged B whose root was damaged while the VM was off is abandoned by GRUB; the host comes up on A and can update again', async (t) => {
  const consoleText = await fallsBack(t, ({ a }, osDisk) => {
    // One byte of ROOT-B's ext4 superblock.
    const offset = partitionStart(a, 'ROOT-B') + 1024 + 0x78;
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -P 0xa5 ${offset} 1`, osDisk], { stdio: 'ignore' });
  });
  t.regex(consoleText, /verity: .*data block 0 is corrupted/, 'B was tried and refused by dm-verity');
});

test('a staged B whose kernel cannot load is abandoned by GRUB; the host comes up on A and can update again', async (t) => {
  const consoleText = await fallsBack(t, ({ a, b }, osDisk) => {
    // The first block of BOOT-B's vmlinuz (B's boot image is what updog wrote there): its bzImage
    // header is gone, so GRUB's `linux` refuses it.
    const bootImage = b.artifacts.find((artifact) => artifact.kind === 'boot-image');
    if (bootImage === undefined) throw new Error('B has no boot image');
    const boot = join(work, `boot-b-${process.pid}.ext4`);
    execFileSync('lz4', ['-dqf', join(b.outputDir, bootImage.file), boot]);
    const block = Number(/(\d+)/.exec(execFileSync('debugfs', ['-R', 'bmap /vmlinuz 0', boot], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))?.[1]);
    if (!Number.isInteger(block) || block <= 0) throw new Error('no block for /vmlinuz in BOOT-B');
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -z ${partitionStart(a, 'BOOT-B') + block * 4096} 4096`, osDisk], { stdio: 'ignore' });
  });
  t.notRegex(consoleText, /data block 0 is corrupted/);
  t.regex(consoleText, /invalid magic number|you need to load the kernel first|did not boot/, 'GRUB could not start B\'s kernel');
});
