// fallback.test.ts's scenarios on the aarch64 dev image under qemu-system-aarch64 (virt, AAVMF, TCG):
// a staged B damaged while the VM is off is tried once by GRUB's arm64-efi gptprio, fails (dm-verity
// refuses its root, or GRUB cannot load its kernel), and the host comes up on A, reports the
// failed update and can still update to B.
import test from 'ava';
import { devBuilder } from '../helpers/dev-image.ts';
import { sharedRelease } from '../helpers/update-release.ts';
import { damageKernelB, damageRootB, fallsBack } from '../helpers/update-scenarios.ts';
import { bootedSets } from '../helpers/vm.ts';

const buildA = devBuilder('vmfallbackarma', 'aarch64');
const buildB = devBuilder('vmfallbackarmb', 'aarch64');

/** A (0.1.0) and B (0.1.1) built, B in a signed repository served on 127.0.0.1: once per file. */
const { work, setUp } = sharedRelease((cleanUp) => test.after.always(cleanUp), 'fallback-aarch64', buildA, buildB);

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
