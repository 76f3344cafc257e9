// Bottlerocket's update promise on a running host, driven only through its API as an operator
// would: a host of dev 0.1.0 finds 0.1.1 in a signed repository served on the test machine's
// 127.0.0.1 (forwarded into the guest, which reaches nothing else), writes it into bank B, stays on A
// when the update is cancelled, reboots into B when activated, marks it good and stays on it across
// another reboot, and goes back to A when rolled back.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devBuilder, osDiskOf } from '../helpers/dev-image.ts';
import { makeUpdateRelease } from '../helpers/update-release.ts';
import { bootVm } from '../helpers/vm.ts';

const buildA = devBuilder('vmupdatea');
const buildB = devBuilder('vmupdateb');

test('A→B through the API: check finds 0.1.1, apply writes bank B; cancelled it stays on A; activated the reboot comes up on B, which marks itself good and stays; rolled back it boots A', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-vm-update-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { a, server, forward, userData, requests } = await makeUpdateRelease(dir, buildA, buildB);
  t.teardown(() => server.close());
  const vm = await bootVm(t, { image: osDiskOf(a), userData, forwards: [forward] });
  const os = async (): Promise<string> => (JSON.parse((await vm.api('GET', '/os')).body) as { version_id: string }).version_id;
  t.is(await os(), '0.1.0');

  const check = JSON.parse((await vm.apiclient('update', 'check')).stdout) as { update_state: string; chosen_update?: { version: string } };
  t.is(check.update_state, 'Available', JSON.stringify(check));
  t.is(check.chosen_update?.version, '0.1.1');
  const started = Date.now();
  await vm.apiclient('update', 'apply');
  t.log(`apply (download and write of bank B under TCG): ${((Date.now() - started) / 1000).toFixed(0)} s`);
  t.true(requests.some((path) => /root\.ext4\.lz4/.test(path)), requests.join('\n'));
  const status = async (): Promise<{ update_state: string }> => JSON.parse((await vm.api('GET', '/updates/status')).body) as { update_state: string };
  t.is((await status()).update_state, 'Ready');

  // Cancelled before the reboot: the host stays on A.
  await vm.apiclient('update', 'cancel');
  t.is((await status()).update_state, 'Staged');
  await vm.reboot();
  t.is(await os(), '0.1.0');

  // Applied again, the reboot comes up on B; mark-successful-boot ran before the bridge came up,
  // so another reboot stays on B.
  // The update status lives in /run, as upstream's: a new boot starts with a check.
  t.is((await vm.api('GET', '/updates/status')).status, 404);
  t.is((JSON.parse((await vm.apiclient('update', 'check')).stdout) as { update_state: string }).update_state, 'Available');
  await vm.apiclient('update', 'apply');
  t.is((await status()).update_state, 'Ready');
  await vm.reboot();
  t.is(await os(), '0.1.1');
  await vm.reboot();
  t.is(await os(), '0.1.1');

  // brl's rollback action (upstream runs signpost from the admin container): back to A.
  t.is((await vm.api('POST', '/actions/rollback-to-inactive')).status, 204);
  await vm.reboot();
  t.is(await os(), '0.1.0');
});
