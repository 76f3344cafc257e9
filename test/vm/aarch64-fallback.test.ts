// fallback.test.ts's scenarios on the aarch64 dev image under qemu-system-aarch64 (virt, AAVMF, TCG):
// a staged B damaged while the VM is off is tried once by GRUB's arm64-efi gptprio, fails (dm-verity
// refuses its root, or GRUB cannot load its kernel), and the host comes up on A, reports the
// failed update and can still update to B.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devBuilder } from '../helpers/dev-image.ts';
import { makeUpdateRelease, type UpdateRelease } from '../helpers/update-release.ts';
import { damageKernelB, damageRootB, fallsBack } from '../helpers/update-scenarios.ts';
import { bootedSets } from '../helpers/vm.ts';

const buildA = devBuilder('vmfallbackarma', 'aarch64');
const buildB = devBuilder('vmfallbackarmb', 'aarch64');

let release: Promise<UpdateRelease> | undefined;
const work = mkdtempSync(join(tmpdir(), 'brl-vm-fallback-aarch64-'));
test.after.always(async () => {
  await (await release?.catch(() => undefined))?.server.close();
  rmSync(work, { recursive: true, force: true });
});

function setUp(): Promise<UpdateRelease> {
  release ??= makeUpdateRelease(work, buildA, buildB);
  return release;
}

test.serial('aarch64: a staged B whose root was damaged while the VM was off is abandoned by GRUB; the host comes up on set A and can update again', async (t) => {
  const setup = await setUp();
  const consoleText = await fallsBack(t, setup, damageRootB);
  t.regex(consoleText, /verity: .*data block 0 is corrupted/, 'B was tried and refused by dm-verity');
  t.deepEqual(bootedSets(consoleText, setup.a), ['B', 'A'], 'the kernel ran from set B, then from set A');
});

test.serial('aarch64: a staged B whose kernel cannot load is abandoned by GRUB; the host comes up on set A and can update again', async (t) => {
  const setup = await setUp();
  const consoleText = await fallsBack(t, setup, damageKernelB(work));
  t.notRegex(consoleText, /data block 0 is corrupted/);
  t.regex(consoleText, /invalid magic number|you need to load the kernel first|did not boot/, 'GRUB could not start B\'s kernel');
  t.deepEqual(bootedSets(consoleText, setup.a), ['A'], 'no kernel ran from set B');
});
