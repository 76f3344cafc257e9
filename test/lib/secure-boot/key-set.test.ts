// The Secure Boot key set: written once with private keys only the owner can read, checked with openssl, and cross-checked before a build signs anything.
import test from 'ava';
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { initKeySet, keySetFiles, loadBootSigningKeys } from '../../../src/lib/secure-boot/key-set.ts';
import { generateKeyFile } from '../../../src/lib/signing/key-file.ts';

const run = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), 'brl-sb-keys-'));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

const options = { organization: 'brl test', validDays: 30, rsaBits: 2048 as const };
// Two sets made once and copied per test: RSA key generation is the slow part.
const projectSet = initKeySet(join(scratch, 'project'), options);
const otherSet = initKeySet(join(scratch, 'other'), { ...options, organization: 'someone else' });

function copySet(from: string, name: string): string {
  const dir = join(scratch, name);
  mkdirSync(dir);
  for (const file of readdirSync(from)) {
    copyFileSync(join(from, file), join(dir, file));
    chmodSync(join(dir, file), statSync(join(from, file)).mode & 0o777);
  }
  return dir;
}

const codeCode = (error: unknown) => (error as { code?: string }).code;

test('init writes every key with mode 0600 and every certificate and the GRUB key readable', async (t) => {
  const summary = await projectSet;
  for (const file of summary.privateKeys) t.is(statSync(join(summary.dir, file)).mode & 0o777, 0o600, file);
  for (const file of [keySetFiles.pkCertificate, keySetFiles.kekCertificate, keySetFiles.dbCertificate, keySetFiles.codeSigningCertificate, keySetFiles.grubPublicKey]) {
    t.is(statSync(join(summary.dir, file)).mode & 0o777, 0o644, file);
  }
  t.deepEqual(readdirSync(summary.dir).sort(), Object.values(keySetFiles).sort());
  // The other set may still be in its staging directory: only this set's must be gone.
  t.deepEqual(readdirSync(scratch).filter((name) => name.startsWith('.tmp-') && name.endsWith('-project')), []);
});

test('openssl: PK, KEK and db are self-signed CAs; code-sign.crt chains to db and names the codeSigning usage', async (t) => {
  const { dir } = await projectSet;
  for (const file of [keySetFiles.pkCertificate, keySetFiles.kekCertificate, keySetFiles.dbCertificate]) {
    const path = join(dir, file);
    const { stdout } = await run('openssl', ['verify', '-CAfile', path, path]);
    t.regex(stdout, /: OK/);
    const { stdout: text } = await run('openssl', ['x509', '-in', path, '-noout', '-text']);
    t.regex(text, /CA:TRUE/);
    t.regex(text, /Signature Algorithm: sha256WithRSAEncryption/);
    t.regex(text, /Public-Key: \(2048 bit\)/);
  }
  const { stdout } = await run('openssl', ['verify', '-CAfile', join(dir, keySetFiles.dbCertificate), join(dir, keySetFiles.codeSigningCertificate)]);
  t.regex(stdout, /: OK/);
  const { stdout: text } = await run('openssl', ['x509', '-in', join(dir, keySetFiles.codeSigningCertificate), '-noout', '-text']);
  t.regex(text, /CA:FALSE/);
  t.regex(text, /Code Signing/);
  t.regex(text, /Issuer: O = brl test, CN = Secure Boot Signature Database Key/);
});

test('the private keys parse with openssl as 2048-bit RSA keys matching their certificates', async (t) => {
  const { dir } = await projectSet;
  const modulus = async (args: string[]) => (await run('openssl', args)).stdout.trim();
  for (const name of ['PK', 'KEK', 'db', 'code-sign']) {
    t.is(await modulus(['rsa', '-in', join(dir, `${name}.key`), '-noout', '-modulus']), await modulus(['x509', '-in', join(dir, `${name}.crt`), '-noout', '-modulus']), name);
  }
});

test('init refuses a directory that already holds files, and leaves them alone', async (t) => {
  const dir = join(scratch, 'occupied');
  mkdirSync(dir);
  writeFileSync(join(dir, 'PK.key'), 'precious');
  const error = await t.throwsAsync(initKeySet(dir, options));
  t.is(codeCode(error), 'KEYS_EXIST');
  t.deepEqual(readdirSync(dir), ['PK.key']);
});

test('a complete set loads: code-signing identity, GRUB key and the firmware certificates', async (t) => {
  const { dir, grubKey } = await projectSet;
  const keys = await loadBootSigningKeys({ dir });
  t.is(keys.grub.signer.source, `file://${join(dir, keySetFiles.grubKey)}`);
  t.is(keys.grub.key.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  t.truthy(grubKey.fingerprint);
  t.true(keys.db.length > 0 && keys.kek.length > 0 && keys.pk.length > 0);
});

test('a private key readable by others is refused with a chmod hint', async (t) => {
  const dir = copySet((await projectSet).dir, 'loose');
  chmodSync(join(dir, keySetFiles.codeSigningKey), 0o644);
  const error = await t.throwsAsync(loadBootSigningKeys({ dir }));
  t.is(codeCode(error), 'KEY_FILE_PERMISSIONS');
  t.regex((error as { hint?: string }).hint ?? '', /chmod 600/);
});

test('a code-signing certificate from another set is refused as not issued by db', async (t) => {
  const dir = copySet((await projectSet).dir, 'mixed-chain');
  copyFileSync(join((await otherSet).dir, keySetFiles.codeSigningCertificate), join(dir, keySetFiles.codeSigningCertificate));
  const error = await t.throwsAsync(loadBootSigningKeys({ dir }));
  t.is(codeCode(error), 'CERTIFICATE_CHAIN');
});

test('a code-signing key that does not match its certificate is refused', async (t) => {
  const dir = copySet((await projectSet).dir, 'mixed-key');
  rmSync(join(dir, keySetFiles.codeSigningKey));
  await generateKeyFile(join(dir, keySetFiles.codeSigningKey), 'rsa', { rsaBits: 2048 });
  const error = await t.throwsAsync(loadBootSigningKeys({ dir }));
  t.is(codeCode(error), 'KEY_MISMATCH');
});

test('a GRUB key that does not match grub.gpg is refused', async (t) => {
  const dir = copySet((await projectSet).dir, 'mixed-grub');
  copyFileSync(join((await otherSet).dir, keySetFiles.grubPublicKey), join(dir, keySetFiles.grubPublicKey));
  const error = await t.throwsAsync(loadBootSigningKeys({ dir }));
  t.is(codeCode(error), 'KEY_MISMATCH');
  t.regex(error!.message, /grub\.gpg/);
});

test('an Ed25519 code-signing key is refused as the wrong key type', async (t) => {
  const dir = copySet((await projectSet).dir, 'ed25519');
  const ed25519 = join(dir, 'ed25519.key');
  await generateKeyFile(ed25519, 'ed25519');
  const error = await t.throwsAsync(loadBootSigningKeys({ dir, codeSigningKey: { kind: 'file', path: ed25519 } }));
  t.is(codeCode(error), 'WRONG_KEY_TYPE');
});

test('an expired certificate is refused with its dates', async (t) => {
  const { dir } = await projectSet;
  const error = await t.throwsAsync(loadBootSigningKeys({ dir }, new Date(Date.now() + 60 * 86_400_000)));
  t.is(codeCode(error), 'CERTIFICATE_EXPIRED');
  t.regex(error!.message, /PK\.crt is valid from .* to .*, not at/);
});

test('a missing key set is a not-found error naming the file', async (t) => {
  const error = await t.throwsAsync(loadBootSigningKeys({ dir: join(scratch, 'nowhere') }));
  t.is((error as { exitCode?: number }).exitCode, 4);
  t.regex(error!.message, /nowhere\/PK\.crt/);
  t.false(existsSync(join(scratch, 'nowhere')));
});
