// update.test.ts's scenario on the aarch64 dev image under qemu-system-aarch64 (virt, AAVMF, TCG):
// a host of 0.1.0 finds 0.1.1 in the signed repository's dev/aarch64/ metadata, updog (arm64 Node.js)
// writes bank B, GRUB's arm64-efi gptprio boots B after the reboot, and the rollback action brings
// it back to A. The cancel and the second reboot on B are left to x86_64 (same code, no arch in it):
// every aarch64 boot costs 1.5-3 min.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devBuilder } from '../helpers/dev-image.ts';
import { makeUpdateRelease } from '../helpers/update-release.ts';
import { updateThroughApi } from '../helpers/update-scenarios.ts';

const buildA = devBuilder('vmupdatearma', 'aarch64');
const buildB = devBuilder('vmupdatearmb', 'aarch64');

test('aarch64 A→B through the API: check finds the aarch64 0.1.1, apply writes bank B, the reboot comes up on set B with 0.1.1; rolled back it boots set A', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-vm-update-aarch64-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const release = await makeUpdateRelease(dir, buildA, buildB);
  t.teardown(() => release.server.close());
  await updateThroughApi(t, release, { cancelFirst: false, stayOnB: false });
});
