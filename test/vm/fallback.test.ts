// Bottlerocket's fallback promise on a running host: an update that cannot boot is abandoned by the
// boot loader itself. B is staged and activated through the API, then damaged while the VM is off
// (one byte of ROOT-B's superblock, or the first block of BOOT-B's kernel); at the next start GRUB
// tries B, the boot fails (dm-verity, or GRUB cannot load the kernel), gptprio has spent B's only
// try, and the host comes up on A — reports the update that failed — and a new update can still be
// applied. (The same on aarch64: aarch64-fallback.test.ts.)
import test from 'ava';
import { devBuilder } from '../helpers/dev-image.ts';
import { sharedRelease } from '../helpers/update-release.ts';
import { damageKernelB, damageRootB, fallsBack } from '../helpers/update-scenarios.ts';
import { bootedSets } from '../helpers/vm.ts';

const buildA = devBuilder('vmfallbacka');
const buildB = devBuilder('vmfallbackb');

/** A (0.1.0) and B (0.1.1) built, B in a signed repository served on 127.0.0.1: once per file. */
const { work, setUp } = sharedRelease((cleanUp) => test.after.always(cleanUp), 'fallback', buildA, buildB);

test('a staged B whose root was damaged while the VM was off is abandoned by GRUB; the host comes up on A and can update again', async (t) => {
  const setup = await setUp();
  const consoleText = await fallsBack(t, setup, damageRootB);
  t.regex(consoleText, /verity: .*data block 0 is corrupted/, 'B was tried and refused by dm-verity');
  t.deepEqual(bootedSets(consoleText, setup.a), ['B', 'A']);
});

test('a staged B whose kernel cannot load is abandoned by GRUB; the host comes up on A and can update again', async (t) => {
  const consoleText = await fallsBack(t, await setUp(), damageKernelB(work));
  t.notRegex(consoleText, /data block 0 is corrupted/);
  t.regex(consoleText, /invalid magic number|you need to load the kernel first|did not boot/, 'GRUB could not start B\'s kernel');
});
