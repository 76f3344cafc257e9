// Bottlerocket's update promise on a running host, driven only through its API as an operator
// would: a host of dev 0.1.0 finds 0.1.1 in a signed repository served on the test machine's
// 127.0.0.1 (forwarded into the guest, which reaches nothing else), writes it into bank B, stays on A
// when the update is cancelled, reboots into B when activated, marks it good and stays on it across
// another reboot, and goes back to A when rolled back. (The same scenario on aarch64:
// aarch64-update.test.ts.)
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devBuilder } from '../helpers/dev-image.ts';
import { makeUpdateRelease } from '../helpers/update-release.ts';
import { updateThroughApi } from '../helpers/update-scenarios.ts';

const buildA = devBuilder('vmupdatea');
const buildB = devBuilder('vmupdateb');

test('A→B through the API: check finds 0.1.1, apply writes bank B; cancelled it stays on A; activated the reboot comes up on B, which marks itself good and stays; rolled back it boots A', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-vm-update-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const release = await makeUpdateRelease(dir, buildA, buildB);
  t.teardown(() => release.server.close());
  await updateThroughApi(t, release, { cancelFirst: true, stayOnB: true });
});
