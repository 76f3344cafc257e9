// A host's life in one VM under BIOS (SeaBIOS → GRUB's core.img): boot to API ready, a setting
// changed through the API, `apiclient reboot`, the change still there; then the journal on the
// data disk, read on the host with journalctl, shows each boot unit succeeded, in order, on a root
// that refused a write.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devBuilder, osDiskOf } from '../helpers/dev-image.ts';
import { extractJournal, readJournal } from '../helpers/guest-journal.ts';
import { bootVm } from '../helpers/vm.ts';

const buildDev = devBuilder('vm-host');

/** The boot units of host-api.md §1, in the order they must finish. */
const bootUnits = [
  'prepare-local.service',
  'migrator.service',
  'storewolf.service',
  'apiserver.service',
  'early-boot-config.service',
  'sundog.service',
  'settings-applier.service',
  'mark-successful-boot.service',
];

test('BIOS: API ready, a setting survives apiclient reboot, and the journal shows every boot unit succeed in order on a read-only root', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-vm-host-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const vm = await bootVm(t, { image: osDiskOf(await buildDev()), firmware: 'bios' });
  t.log(`API ready after ${vm.readySeconds.toFixed(1)} s (TCG, BIOS)`);

  await vm.apiclient('set', 'motd=kept across reboots');
  await vm.apiclient('reboot');
  await vm.waitForConsole(/verity-init: verified root mounted read-only/, 2, 300);
  await vm.waitForApi(300);
  const { stdout } = await vm.apiclient('get', 'settings.motd');
  t.deepEqual(JSON.parse(stdout), { settings: { motd: 'kept across reboots' } });
  await vm.stop();

  const entries = readJournal(extractJournal(join(vm.stateDir, 'data.qcow2'), join(dir, 'journal')));
  const boots = [...new Set(entries.map((entry) => entry.bootId))];
  // The first boot ended in a clean reboot, so its journal is whole on the disk; the second was
  // stopped by killing QEMU, so what the guest had not yet written back may be missing.
  t.true(boots.length >= 1, 'the journal on the data disk holds the boots');
  t.true(entries.some((entry) => entry.bootId === boots[0] && /^Reached target reboot\.target/.test(entry.message)), 'the first boot ended in the reboot');
  const first = entries.filter((entry) => entry.bootId === boots[0]);
  const done = (unit: string): number => {
    const verb = unit === 'apiserver.service' ? 'Started' : 'Finished';
    return first.find((entry) => entry.unit === unit && entry.message.startsWith(`${verb} ${unit}`))?.monotonic ?? -1;
  };
  const times = bootUnits.map(done);
  t.deepEqual(bootUnits.filter((_, i) => (times[i] ?? -1) < 0), [], 'every boot unit succeeded');
  t.deepEqual([...times].sort((a, b) => a - b), times, 'in the boot order');
  t.deepEqual(first.filter((entry) => /^Failed to start /.test(entry.message)).map((entry) => entry.message), []);
  t.true(first.some((entry) => entry.message === 'prepare-local: root is read-only: a write to / failed with EROFS'));
});
