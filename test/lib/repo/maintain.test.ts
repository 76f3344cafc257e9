import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkExpirations, configuredTrustRoot, refreshRepository } from '../../../src/lib/repo/maintain.ts';
import { defaultExpirationPolicy } from '../../../src/lib/repo/policy.ts';
import { DirectoryReader, HttpReader } from '../../../src/lib/repo/reader.ts';
import { readRootFile } from '../../../src/lib/repo/root-file.ts';
import { serveDirectory } from '../../../src/lib/repo/serve.ts';
import { validateRepository } from '../../../src/lib/repo/validate.ts';
import { nowSeconds, parseExpires } from '../../../src/lib/tuf/time.ts';
import { buildSignedRepo, tempDir } from './helpers.ts';

const day = 86_400;

test('refresh gives new versions and expirations, re-signed, with targets untouched', async (t) => {
  const built = await buildSignedRepo({ now: nowSeconds() - 3 * day });
  const reader = new DirectoryReader(built.result.metadataDir, built.result.targetsDir);
  const root = await readRootFile(built.rootPath);
  const now = nowSeconds();
  const refreshed = await refreshRepository(reader, built.result.metadataDir, await configuredTrustRoot(built.rootPath), [built.signer], { now, policy: defaultExpirationPolicy, targetsDir: built.result.targetsDir });
  t.is(refreshed.versions.timestamp, now);
  t.is(parseExpires(refreshed.expires.timestamp), now + 7 * day);
  const before = JSON.parse(readFileSync(join(built.result.metadataDir, `${built.result.versions.targets}.targets.json`), 'utf8'));
  const after = JSON.parse(readFileSync(join(built.result.metadataDir, `${refreshed.versions.targets}.targets.json`), 'utf8'));
  t.deepEqual(after.signed.targets, before.signed.targets);
  const result = await validateRepository({ reader, trustedRoot: root, now, checkTargets: true });
  t.is(result.versions.snapshot, refreshed.versions.snapshot);
});

test('an expired repository is refreshed only with unsafe', async (t) => {
  const built = await buildSignedRepo({ now: nowSeconds() - 10 * day });
  const reader = new DirectoryReader(built.result.metadataDir, built.result.targetsDir);
  const root = await readRootFile(built.rootPath);
  const options = { now: nowSeconds(), policy: defaultExpirationPolicy };
  await t.throwsAsync(refreshRepository(reader, built.result.metadataDir, await configuredTrustRoot(built.rootPath), [built.signer], options), { message: /timestamp metadata already expired; refusing/ });
  await refreshRepository(reader, built.result.metadataDir, await configuredTrustRoot(built.rootPath), [built.signer], { ...options, unsafe: true });
  await t.notThrowsAsync(validateRepository({ reader, trustedRoot: root, now: nowSeconds() }));
});

test('refreshing a published repository writes the new metadata to the output directory', async (t) => {
  const built = await buildSignedRepo();
  const server = await serveDirectory(built.outdir);
  t.teardown(() => server.close());
  const outdir = join(tempDir(), 'dev', 'x86_64');
  const root = await readRootFile(built.rootPath);
  const refreshed = await refreshRepository(new HttpReader(`${server.url}dev/x86_64/`, `${server.url}targets/`), outdir, await configuredTrustRoot(built.rootPath), [built.signer], { now: nowSeconds() + 5, policy: defaultExpirationPolicy });
  const result = await validateRepository({ reader: new DirectoryReader(outdir, built.result.targetsDir), trustedRoot: root, now: nowSeconds() });
  t.is(result.versions.timestamp, refreshed.versions.timestamp);
});

test('check-expirations lists every role and fails when one expires within the limit', async (t) => {
  const built = await buildSignedRepo();
  const reader = new DirectoryReader(built.result.metadataDir, built.result.targetsDir);
  const root = await readRootFile(built.rootPath);
  const now = nowSeconds();
  const fine = await checkExpirations(reader, root, now, now + 3 * day);
  t.deepEqual(fine.roles.map((role) => [role.role, role.expiring]), [['root', false], ['targets', false], ['snapshot', false], ['timestamp', false]]);
  await t.throwsAsync(checkExpirations(reader, root, now, now + 400 * day), { message: /^root \(expires \S+\), targets .*, snapshot .*, timestamp .* expire\(s\) before/ });
});

test('validate --targets works against a published repository over HTTP', async (t) => {
  const built = await buildSignedRepo();
  const server = await serveDirectory(built.outdir);
  t.teardown(() => server.close());
  const result = await validateRepository({
    reader: new HttpReader(`${server.url}dev/x86_64`, `${server.url}targets`), trustedRoot: await readRootFile(built.rootPath), now: nowSeconds(), checkTargets: true,
  });
  t.is(result.targetsChecked, result.targetCount);
  t.is(result.location, `${server.url}dev/x86_64/`);
});
