import test from 'ava';
import { applicableUpdates, chooseUpdate, findMigrations, parseManifest, type HostUpdateState, type Manifest, type Update } from '../../../src/lib/update-metadata/index.ts';
import { BrlError } from '../../../src/lib/core/errors.ts';

const now = Date.UTC(2026, 5, 1);
function update(version: string, max: string, extra: Partial<Update> = {}): Update {
  return { variant: 'aws-k8s', arch: 'x86_64', version, max_version: max, waves: {}, images: { boot: `${version}-b`, root: `${version}-r`, hash: `${version}-h` }, ...extra };
}
function host(version: string, extra: Partial<HostUpdateState> = {}): HostUpdateState {
  return { variant: 'aws-k8s', arch: 'x86_64', version, seed: 1000, versionLock: 'latest', ignoreWaves: false, nowMs: now, ...extra };
}
const manifest = (updates: Update[], migrations: Manifest['migrations'] = {}): Manifest => ({ updates, migrations });

test('chooses the newest release of the host variant and arch', (t) => {
  const m = manifest([update('1.0.0', '1.2.0'), update('1.2.0', '1.2.0'), update('1.1.0', '1.2.0'),
    update('1.3.0', '1.3.0', { variant: 'aws-ecs' }), update('1.4.0', '1.4.0', { arch: 'aarch64' })]);
  t.is(chooseUpdate(m, host('1.0.0'))?.version, '1.2.0');
  t.deepEqual(applicableUpdates(m, host('1.0.0')).map((u) => u.version), ['1.2.0', '1.1.0', '1.0.0']);
  t.is(chooseUpdate(m, host('1.2.0')), undefined);
});

test('regret fixture: a host above max_version moves down to the highest visible release', (t) => {
  // Upstream regret.json: version 1.25.0 published with max_version 1.20.0.
  const m = manifest([update('1.25.0', '1.20.0'), update('1.20.0', '1.20.0'), update('1.19.0', '1.20.0')]);
  t.is(chooseUpdate(m, host('1.25.0'))?.version, '1.20.0');
  t.is(chooseUpdate(m, host('1.19.0'))?.version, '1.20.0');
  t.false(applicableUpdates(m, host('1.0.0')).some((u) => u.version === '1.25.0'));
});

test('waves hold a release back until the seed is reached; --now and ignore_waves bypass them', (t) => {
  const waves = { 0: '2026-06-01T01:00:00Z', 1024: '2026-06-01T03:00:00Z' };
  const m = manifest([update('1.1.0', '1.1.0', { waves })]);
  t.is(chooseUpdate(m, host('1.0.0', { seed: 512, nowMs: now + 3_600_000 })), undefined);
  t.is(chooseUpdate(m, host('1.0.0', { seed: 512, nowMs: now + 2 * 3_600_000 }))?.version, '1.1.0');
  t.is(chooseUpdate(m, host('1.0.0', { seed: 512, ignoreWaves: true }))?.version, '1.1.0');
});

test('--image picks that exact version, even a downgrade, and fails clearly when absent', (t) => {
  const m = manifest([update('1.0.0', '1.2.0'), update('1.2.0', '1.2.0')]);
  t.is(chooseUpdate(m, host('1.2.0'), '1.0.0')?.version, '1.0.0');
  const error = t.throws(() => chooseUpdate(m, host('1.2.0'), '1.1.0'), { instanceOf: BrlError });
  t.regex(error!.message, /no applicable update with version 1\.1\.0 for aws-k8s on x86_64/);
  t.throws(() => chooseUpdate(m, host('1.2.0'), 'v1.0.0'), { message: /--image: "v1\.0\.0" is not a semantic version/ });
});

test('a version lock pins the host to one release', (t) => {
  const m = manifest([update('1.0.0', '1.2.0'), update('1.1.0', '1.2.0'), update('1.2.0', '1.2.0')]);
  t.is(chooseUpdate(m, host('1.0.0', { versionLock: 'v1.1.0' }))?.version, '1.1.0');
  t.is(chooseUpdate(m, host('1.1.0', { versionLock: '1.1.0' })), undefined);
  t.is(chooseUpdate(m, host('1.2.0', { versionLock: '1.0.0' }))?.version, '1.0.0');
  t.is(chooseUpdate(m, host('1.0.0', { versionLock: '1.5.0' })), undefined);
});

test('migration chain takes the furthest edge and reverses for a downgrade', (t) => {
  const m = parseManifest(JSON.stringify({ updates: [], migrations: {
    '(1.0.0, 1.1.0)': ['a'], '(1.1.0, 1.2.0)': ['b', 'c'], '(1.0.0, 1.2.0)': ['short'], '(1.2.0, 1.3.0)': ['d'], '(1.3.0, 1.4.0)': [],
  } }));
  t.deepEqual(findMigrations(m, '1.0.0', '1.3.0'), ['short', 'd']);
  t.deepEqual(findMigrations(m, '1.1.0', '1.4.0'), ['b', 'c', 'd']);
  t.deepEqual(findMigrations(m, '1.4.0', '1.1.0'), ['d', 'c', 'b']);
  t.deepEqual(findMigrations(m, '1.2.0', '1.2.0'), []);
  t.throws(() => findMigrations(m, '1.0.0', '1.5.0'), { message: /no migration path from 1\.0\.0 to 1\.5\.0 \(stuck at 1\.4\.0\)/ });
});

test('pre-release versions order below their release', (t) => {
  const m = manifest([update('1.1.0-rc.1', '1.1.0'), update('1.1.0', '1.1.0')]);
  t.is(chooseUpdate(m, host('1.1.0-rc.1'))?.version, '1.1.0');
});
