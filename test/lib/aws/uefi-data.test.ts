// Where `brl ami publish` takes a signed variant's UefiData from: the key set's certificates (checked against the build), or a given blob.
import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { uefiDataForPublish } from '../../../src/lib/aws/uefi-data.ts';
import type { BrlError } from '../../../src/lib/core/errors.ts';
import { decodeAwsUefiData, secureBootCertificatesIn } from '../../../src/lib/secure-boot/aws-uefi-data.ts';
import { initKeySet, keySetFiles, loadFirmwareCertificates } from '../../../src/lib/secure-boot/key-set.ts';

const scratch = mkdtempSync(join(tmpdir(), 'brl-uefi-publish-'));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));
const projectDir = join(scratch, 'project');
const keysDir = join(projectDir, 'keys', 'secure-boot');
// Only the certificates stay: publishing must not need a private key.
const certificates = initKeySet(keysDir, { organization: 'brl test', validDays: 30, rsaBits: 2048 }).then(async () => {
  for (const file of [keySetFiles.pkKey, keySetFiles.kekKey, keySetFiles.dbKey, keySetFiles.codeSigningKey, keySetFiles.grubKey]) await rm(join(keysDir, file));
  writeFileSync(join(projectDir, 'brl.toml'), '[secure-boot]\nkeys-dir = "keys/secure-boot"\n');
  return loadFirmwareCertificates(keysDir);
});
const sha256 = (der: Buffer) => createHash('sha256').update(der).digest('hex');

test('makes the UefiData from the certificates alone, the same bytes for the same build, with an all-zero time when the build has none', async (t) => {
  const keys = await certificates;
  const request = { projectDir, variant: 'aws-secure', signed: true, dbCertificateSha256: sha256(keys.db), sourceDateEpoch: 1_767_225_600, env: {} };
  const first = (await uefiDataForPublish(request))!;
  t.deepEqual(secureBootCertificatesIn(decodeAwsUefiData(first.value, 'first')), { pk: [keys.pk], kek: [keys.kek], db: [keys.db] });
  t.is((await uefiDataForPublish(request))?.value, first.value);
  const undated = decodeAwsUefiData((await uefiDataForPublish({ ...request, sourceDateEpoch: undefined }))!.value, 'undated');
  t.true(undated.every((v) => v.timestamp?.equals(Buffer.alloc(16))));
});

test('refuses a key set whose db certificate is not the one the build signed for', async (t) => {
  await certificates;
  await t.throwsAsync(uefiDataForPublish({ projectDir, variant: 'aws-secure', signed: true, dbCertificateSha256: 'ab'.repeat(32), env: {} }), {
    code: 'DB_CERTIFICATE_MISMATCH',
    message: /db\.crt \(SHA-256 [0-9a-f]{64}\) is not the db certificate aws-secure was signed for \(abab/,
  });
});

test('without a configured key set, or with a certificate missing, says that only the public certificates are needed', async (t) => {
  await certificates;
  const bare = mkdtempSync(join(scratch, 'bare-'));
  const error = await t.throwsAsync(uefiDataForPublish({ projectDir: bare, variant: 'aws-secure', signed: true, env: {} }), { code: 'NO_SECURE_BOOT_CERTIFICATES', message: /aws-secure signs its boot path/ });
  t.regex((error as BrlError | undefined)?.hint ?? '', /only the public certificates PK\.crt, KEK\.crt and db\.crt .*no private key.*BRL_SECURE_BOOT_KEYS/);
  const partial = join(scratch, 'partial');
  await initKeySet(partial, { organization: 'brl test', validDays: 30, rsaBits: 2048 });
  await rm(join(partial, keySetFiles.dbCertificate));
  await t.throwsAsync(uefiDataForPublish({ projectDir: bare, variant: 'aws-secure', signed: true, env: { BRL_SECURE_BOOT_KEYS: partial } }), { code: 'NO_SECURE_BOOT_CERTIFICATES', message: /partial has no db\.crt/ });
});

test('a --uefi-data file is registered as given once it decodes; anything else is refused naming the file', async (t) => {
  const keys = await certificates;
  const made = (await uefiDataForPublish({ projectDir, variant: 'aws-secure', signed: true, env: {} }))!;
  const given = join(scratch, 'given.b64');
  writeFileSync(given, `${made.value}\n`);
  t.deepEqual(await uefiDataForPublish({ projectDir: scratch, variant: 'aws-secure', signed: true, uefiDataPath: given, dbCertificateSha256: sha256(keys.db), env: {} }), { value: made.value, source: given });
  const garbage = join(scratch, 'garbage.b64');
  writeFileSync(garbage, Buffer.from('not a variable store').toString('base64'));
  await t.throwsAsync(uefiDataForPublish({ projectDir, variant: 'aws-secure', signed: true, uefiDataPath: garbage, env: {} }), { code: 'BAD_UEFI_DATA', message: /garbage\.b64 is not an EC2 UEFI variable store: no AMZNUEFI magic/ });
});

test('an unsigned variant registers no UEFI data, and refuses a --uefi-data file', async (t) => {
  t.is(await uefiDataForPublish({ projectDir: scratch, variant: 'aws-dev', signed: false, env: {} }), undefined);
  await t.throwsAsync(uefiDataForPublish({ projectDir: scratch, variant: 'aws-dev', signed: false, uefiDataPath: join(scratch, 'any'), env: {} }), {
    code: 'UEFI_DATA_UNSIGNED',
    message: /--uefi-data is for variants whose boot path is signed; aws-dev registers without UEFI data/,
  });
});
