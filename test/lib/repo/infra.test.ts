import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadRepoConfig } from '../../../src/lib/repo/infra.ts';
import { loadExpirationPolicy, resolveWavePolicy } from '../../../src/lib/repo/policy.ts';
import { wavesFromPolicy } from '../../../src/lib/update-metadata/index.ts';
import { tempDir } from './helpers.ts';

function infra(text: string): string {
  const path = join(tempDir(), 'Infra.toml');
  writeFileSync(path, text);
  return path;
}

test('reads [repo.<name>] with a file key relative to Infra.toml', async (t) => {
  const path = infra(`[repo.default]
root_role_url = "https://example.com/root.json"
root_role_sha512 = "${'ab'.repeat(64)}"
signing_keys = { file = { path = "keys/default.pem" } }
metadata_base_url = "https://updates.example.com/"
targets_url = "https://updates.example.com/targets/"
`);
  const config = await loadRepoConfig(path, 'default');
  t.deepEqual(config.signingKeys, { kind: 'file', path: join(path, '..', 'keys', 'default.pem') });
  t.is(config.rootRoleSha512, 'ab'.repeat(64));
  t.is(config.metadataBaseUrl, 'https://updates.example.com/');
});

test('reads KMS (key_id or available_keys) and SSM key sources', async (t) => {
  const path = infra(`[repo.kms]
signing_keys = { kms = { key_id = "alias/release", regions = ["us-west-2"] } }
[repo.available]
signing_keys = { kms = { available_keys = { "abcd-1234" = "eu-west-1" } } }
[repo.ssm]
signing_keys = { ssm = { parameter = "/brl/signing-key" } }
`);
  t.deepEqual((await loadRepoConfig(path, 'kms')).signingKeys, { kind: 'kms', keyId: 'alias/release', region: 'us-west-2' });
  t.deepEqual((await loadRepoConfig(path, 'available')).signingKeys, { kind: 'kms', keyId: 'abcd-1234', region: 'eu-west-1' });
  t.deepEqual((await loadRepoConfig(path, 'ssm')).signingKeys, { kind: 'ssm', parameter: '/brl/signing-key' });
});

test('unknown keys and half-configured roots are refused with file, line and key', async (t) => {
  const unknown = infra('[repo.default]\nmetadata_base_url = "https://x/"\nroot_url = "https://x/root.json"\n');
  await t.throwsAsync(loadRepoConfig(unknown, 'default'), { message: /Infra\.toml:3: repo\.default\.root_url: unknown key/ });
  const half = infra('[repo.default]\nroot_role_url = "https://x/root.json"\n');
  await t.throwsAsync(loadRepoConfig(half, 'default'), { message: /root_role_url and root_role_sha512 go together/ });
  const twoKeys = infra('[repo.default]\nsigning_keys = { file = { path = "a" }, ssm = { parameter = "/b" } }\n');
  await t.throwsAsync(loadRepoConfig(twoKeys, 'default'), { message: /needs exactly one of file, kms or ssm/ });
});

test('a missing Infra.toml is tolerated unless required', async (t) => {
  const path = join(tempDir(), 'Infra.toml');
  t.deepEqual(await loadRepoConfig(path, 'default'), { name: 'default' });
  await t.throwsAsync(loadRepoConfig(path, 'default', { required: true }), { message: /does not exist/ });
});

test('expiration policy defaults to 2 weeks / 2 weeks / 1 week and reads pubsys policy files', async (t) => {
  t.deepEqual(await loadExpirationPolicy(undefined), { snapshot: 1_209_600, targets: 1_209_600, timestamp: 604_800 });
  const path = join(tempDir(), 'policy.toml');
  writeFileSync(path, "snapshot_expiration = '3 days'\ntargets_expiration = '4 weeks'\ntimestamp_expiration = '12 hours'\n");
  t.deepEqual(await loadExpirationPolicy(path), { snapshot: 259_200, targets: 2_419_200, timestamp: 43_200 });
});

test('the built-in wave policies give the upstream manifest keys', async (t) => {
  const start = Date.UTC(2026, 0, 1);
  const hours = async (name: string) => Object.entries(wavesFromPolicy(await resolveWavePolicy(name), start)).map(([seed, time]) => [Number(seed), (Date.parse(time) - start) / 3_600_000]);
  t.deepEqual(await hours('default'), [[0, 1], [20, 4], [102, 24], [307, 48], [819, 96], [1228, 120], [1843, 144]]);
  t.deepEqual(await hours('accelerated'), [[0, 1], [61, 4], [245, 8], [819, 16], [1638, 24]]);
  t.deepEqual(await hours('ohno'), [[0, 0.5], [102, 1], [512, 2], [1024, 2.5], [1843, 3]]);
  t.deepEqual(await hours('slow-roll'), [[0, 1], [20, 24], [102, 72], [307, 168], [819, 216], [1228, 288], [1843, 312]]);
  await t.throwsAsync(resolveWavePolicy('turbo'), { message: /neither a built-in policy nor a file/ });
});

test('Infra.toml.example parses', async (t) => {
  const config = await loadRepoConfig(new URL('../../../Infra.toml.example', import.meta.url).pathname, 'default', { required: true });
  t.is(config.signingKeys?.kind, 'file');
});
