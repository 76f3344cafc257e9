// A release's policy honoured by a running host, through its API only: waves (the host's seed from
// settings.updates.seed decides when it sees the update) and a datastore migration that runs at boot
// on B and backwards after the rollback to A, with the operator's own settings kept both ways.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devBuilder, osDiskOf } from '../helpers/dev-image.ts';
import { makeUpdateRelease } from '../helpers/update-release.ts';
import { bootVm } from '../helpers/vm.ts';

const buildA = devBuilder('vmpolicya');
const buildB = devBuilder('vmpolicyb');

const MIGRATION = 'migrate_v0.1.1_motd.lz4';
const OLD_MOTD = 'Welcome to Bottlerocket!';
const NEW_MOTD = 'Welcome to brl 0.1.1!';

/** Half the fleet from two days ago; the other half (seeds above 1024) from `lastWave`. */
function wavePolicy(lastWave: Date): string {
  const firstWave = new Date(Date.now() - 2 * 86_400_000);
  return [
    '[[waves]]', `start_after = "${firstWave.toISOString().slice(0, 19)}Z"`, 'fleet_percentage = 50', '',
    '[[waves]]', `start_after = "${lastWave.toISOString().slice(0, 19)}Z"`, 'fleet_percentage = 100', '',
  ].join('\n');
}

test('waves: a host of the last wave sees 0.1.1 only once its wave starts; migrations: B migrates the datastore at boot and A migrates it back after the rollback', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-vm-policy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const release = await makeUpdateRelease(dir, buildA, buildB, {
    migrations: {
      [MIGRATION]: {
        'brl-migration': 1, version: '0.1.1', name: 'motd',
        forward: [{ op: 'set-default', key: 'settings.motd', from: OLD_MOTD, to: NEW_MOTD }],
        backward: [{ op: 'set-default', key: 'settings.motd', from: NEW_MOTD, to: OLD_MOTD }],
      },
    },
    wavePolicy: wavePolicy(new Date(Date.now() + 86_400_000)),
    updateSettings: ['seed = 2000'],
  });
  t.teardown(() => release.server.close());
  const vm = await bootVm(t, { image: osDiskOf(release.a), userData: release.userData, forwards: [release.forward] });
  const get = async <T>(uri: string): Promise<T> => JSON.parse((await vm.api('GET', uri)).body) as T;
  const check = async (): Promise<{ update_state: string; chosen_update: { version: string } | null }> =>
    JSON.parse((await vm.apiclient('update', 'check')).stdout) as { update_state: string; chosen_update: { version: string } | null };

  // Seed 2000 is in the wave that starts tomorrow.
  t.is((await get<{ updates: { seed: number } }>('/settings')).updates.seed, 2000);
  t.like(await check(), { update_state: 'Idle', chosen_update: null });
  // The same repository, the same hour: seed 100 is in the wave that started two days ago.
  await vm.apiclient('set', 'updates.seed=100');
  t.like(await check(), { update_state: 'Available', chosen_update: { version: '0.1.1' } });
  await vm.apiclient('set', 'updates.seed=2000');
  t.like(await check(), { update_state: 'Idle', chosen_update: null });
  // The release engineer moves the last wave's start to a minute ago: the host's time has come.
  await release.rebuild(wavePolicy(new Date(Date.now() - 60_000)));
  t.like(await check(), { update_state: 'Available', chosen_update: { version: '0.1.1' } });

  // The operator's own setting, and the default the migration changes.
  await vm.apiclient('set', '--json', JSON.stringify({ ntp: { 'time-servers': ['192.0.2.123'] } }));
  t.is((await get<{ motd: string }>('/settings')).motd, OLD_MOTD);
  await vm.apiclient('update', 'apply');
  t.true(release.requests.some((path) => path.includes(MIGRATION)), 'the guest cached the migration with the update');
  await vm.reboot();
  t.is((await get<{ version_id: string }>('/os')).version_id, '0.1.1');
  const onB = await get<{ motd: string; ntp: { 'time-servers': string[] } }>('/settings');
  t.is(onB.motd, NEW_MOTD, 'the forward migration ran at boot on B');
  t.deepEqual(onB.ntp['time-servers'], ['192.0.2.123']);

  t.is((await vm.api('POST', '/actions/rollback-to-inactive')).status, 204);
  await vm.reboot();
  t.is((await get<{ version_id: string }>('/os')).version_id, '0.1.0');
  const onA = await get<{ motd: string; ntp: { 'time-servers': string[] } }>('/settings');
  t.is(onA.motd, OLD_MOTD, 'the backward migration ran at boot on A');
  t.deepEqual(onA.ntp['time-servers'], ['192.0.2.123']);
});
