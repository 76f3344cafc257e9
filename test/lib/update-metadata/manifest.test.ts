import test from 'ava';
import {
  addUpdate,
  emptyManifest,
  parseManifest,
  removeUpdate,
  serializeManifest,
  setMaxVersion,
  setMigrations,
  setWaves,
  validateManifest,
  parseWavePolicy,
} from '../../../src/lib/update-metadata/index.ts';
import { BrlError, ExitCode } from '../../../src/lib/core/errors.ts';

const images = (version: string) => ({
  boot: `bottlerocket-aws-k8s-x86_64-${version}-abc-boot.ext4.lz4`,
  root: `bottlerocket-aws-k8s-x86_64-${version}-abc-root.ext4.lz4`,
  hash: `bottlerocket-aws-k8s-x86_64-${version}-abc-root.verity.lz4`,
});

test('parses an upstream manifest, ignoring datastore_version and accepting fractional wave times', (t) => {
  const manifest = parseManifest(JSON.stringify({
    updates: [{
      variant: 'aws-k8s', arch: 'x86_64', version: '1.0.1', max_version: '1.1.0', datastore_version: '1.0',
      waves: { 0: '2020-07-07T00:00:00.123456789Z', 512: '2020-07-08T00:00:00Z' }, images: images('1.0.1'),
    }],
    migrations: { '(1.0.0,1.0.1)': ['migrate_v1.0.1_a.lz4'] },
    datastore_versions: {},
  }));
  t.is(manifest.updates[0]!.max_version, '1.1.0');
  t.false('datastore_version' in manifest.updates[0]!);
  t.deepEqual(manifest.migrations, { '(1.0.0, 1.0.1)': ['migrate_v1.0.1_a.lz4'] });
  t.notThrows(() => validateManifest(manifest));
});

test('refuses a manifest with a repeated wave key, naming where', (t) => {
  const text = `{"updates":[{"variant":"v","arch":"x86_64","version":"1.0.0","max_version":"1.0.0",
    "waves":{"0":"2020-07-07T00:00:00Z","0":"2020-07-08T00:00:00Z"},"images":{"boot":"b","root":"r","hash":"h"}}],"migrations":{}}`;
  const error = t.throws(() => parseManifest(text, 'repo/manifest.json'), { instanceOf: BrlError });
  t.is(error!.exitCode, ExitCode.badInput);
  t.regex(error!.message, /repo\/manifest\.json: \$\.updates\[0\]\.waves: duplicate key "0"/);
});

test('refuses wave keys that are not u32 and migration keys with the wrong shape', (t) => {
  const base = { variant: 'v', arch: 'x86_64', version: '1.0.0', max_version: '1.0.0', images: images('1.0.0') };
  t.throws(() => parseManifest(JSON.stringify({ updates: [{ ...base, waves: { '-1': '2020-07-07T00:00:00Z' } }], migrations: {} })), { message: /wave key must be an unsigned 32-bit seed/ });
  t.throws(() => parseManifest(JSON.stringify({ updates: [{ ...base, waves: { 4294967296: '2020-07-07T00:00:00Z' } }], migrations: {} })), { message: /unsigned 32-bit/ });
  t.notThrows(() => parseManifest(JSON.stringify({ updates: [{ ...base, waves: { 4000: '2020-07-07T00:00:00Z' } }], migrations: {} })));
  t.throws(() => parseManifest(JSON.stringify({ updates: [], migrations: { '1.0.0 -> 1.1.0': [] } })), { message: /must look like "\(1\.0\.0, 1\.1\.0\)"/ });
  t.throws(() => parseManifest(JSON.stringify({ updates: [], migrations: { '(1.0.0, 1.1.0)': [], '(1.0.0,1.1.0)': [] } })), { message: /duplicate migration key/ });
  t.throws(() => parseManifest(JSON.stringify({ updates: [{ ...base, version: 'v1.0.0' }], migrations: {} })), { message: /updates\[0\]\.version: must be a semantic version/ });
});

test('validate refuses wave times that do not increase with the seed', (t) => {
  const manifest = parseManifest(JSON.stringify({ updates: [{ variant: 'v', arch: 'x86_64', version: '1.0.0', max_version: '1.0.0',
    waves: { 0: '2020-07-08T00:00:00Z', 100: '2020-07-07T00:00:00Z' }, images: images('1.0.0') }], migrations: {} }));
  t.throws(() => validateManifest(manifest), { message: /waves\.100: wave 100 starts no later than wave 0/ });
});

test('adding updates follows pubsys max_version rules per variant and arch', (t) => {
  let manifest = emptyManifest();
  manifest = addUpdate(manifest, { variant: 'aws-k8s', arch: 'x86_64', version: '1.0.0', images: images('1.0.0') });
  manifest = addUpdate(manifest, { variant: 'aws-k8s', arch: 'aarch64', version: '1.0.0', images: images('1.0.0') });
  manifest = addUpdate(manifest, { variant: 'aws-k8s', arch: 'x86_64', version: '1.1.0', images: images('1.1.0') });
  t.deepEqual(manifest.updates.map((u) => `${u.arch} ${u.version} ≤ ${u.max_version}`),
    ['x86_64 1.0.0 ≤ 1.1.0', 'aarch64 1.0.0 ≤ 1.0.0', 'x86_64 1.1.0 ≤ 1.1.0']);
  t.deepEqual(manifest.updates[2]!.waves, {});
  // Removing never lowers max_version.
  manifest = removeUpdate(manifest, { variant: 'aws-k8s', arch: 'x86_64', version: '1.1.0' });
  t.is(manifest.updates[0]!.max_version, '1.1.0');
  const error = t.throws(() => addUpdate(manifest, { variant: 'aws-k8s', arch: 'aarch64', version: '1.0.0', images: images('1.0.0') }), { instanceOf: BrlError });
  t.is(error!.exitCode, ExitCode.conflict);
  t.throws(() => removeUpdate(manifest, { variant: 'aws-k8s', arch: 'x86_64', version: '9.9.9' }), { message: /no update for variant aws-k8s, arch x86_64, version 9\.9\.9/ });
  manifest = setMaxVersion(manifest, '1.0.0');
  t.true(manifest.updates.every((u) => u.max_version === '1.0.0'));
});

test('an explicit max_version on add wins and spreads to the same variant and arch', (t) => {
  let manifest = addUpdate(emptyManifest(), { variant: 'v', arch: 'x86_64', version: '1.0.0', images: images('1.0.0') });
  manifest = addUpdate(manifest, { variant: 'v', arch: 'x86_64', version: '1.2.0', maxVersion: '1.1.0', images: images('1.2.0') });
  t.deepEqual(manifest.updates.map((u) => u.max_version), ['1.1.0', '1.1.0']);
});

test('serialization is deterministic, ordered like upstream, and round-trips', (t) => {
  let manifest = addUpdate(emptyManifest(), { variant: 'v', arch: 'x86_64', version: '1.0.0', images: images('1.0.0') });
  const policy = parseWavePolicy('p.toml', '[[waves]]\nstart_after = "1 hour"\nfleet_percentage = 50\n[[waves]]\nstart_after = "2 hours"\nfleet_percentage = 100\n');
  manifest = setWaves(manifest, { variant: 'v', arch: 'x86_64', version: '1.0.0' }, policy, Date.UTC(2026, 0, 1));
  manifest = setMigrations(manifest, { '(1.10.0,1.11.0)': ['b.lz4'], '(1.9.0, 1.10.0)': ['a.lz4'] });
  const text = serializeManifest(manifest);
  t.is(text, `{
  "updates": [
    {
      "variant": "v",
      "arch": "x86_64",
      "version": "1.0.0",
      "max_version": "1.0.0",
      "waves": {
        "0": "2026-01-01T01:00:00Z",
        "1024": "2026-01-01T02:00:00Z"
      },
      "images": {
        "boot": "bottlerocket-aws-k8s-x86_64-1.0.0-abc-boot.ext4.lz4",
        "root": "bottlerocket-aws-k8s-x86_64-1.0.0-abc-root.ext4.lz4",
        "hash": "bottlerocket-aws-k8s-x86_64-1.0.0-abc-root.verity.lz4"
      }
    }
  ],
  "migrations": {
    "(1.9.0, 1.10.0)": [
      "a.lz4"
    ],
    "(1.10.0, 1.11.0)": [
      "b.lz4"
    ]
  }
}`);
  t.is(serializeManifest(parseManifest(text)), text);
  t.is(serializeManifest(emptyManifest()), '{\n  "updates": [],\n  "migrations": {}\n}');
});
