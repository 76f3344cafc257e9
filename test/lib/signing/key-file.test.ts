import test from 'ava';
import { chmodSync, statSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { generateKeyFile, loadKeyFile } from '../../../src/lib/signing/key-file.ts';
import { parseKeySource } from '../../../src/lib/signing/key-source.ts';
import { verifyWithKey } from '../../../src/lib/tuf/key.ts';
import { BrlError, ExitCode } from '../../../src/lib/core/errors.ts';

const dir = () => mkdtempSync(join(tmpdir(), 'brl-keys-'));

for (const type of ['ed25519', 'ecdsa', 'rsa'] as const) {
  test(`a generated ${type} key file is PKCS#8 with mode 0600 and loads back to the same key`, async (t) => {
    const path = join(dir(), 'keys', `${type}.pem`);
    const generated = await generateKeyFile(path, type, { rsaBits: 2048 });
    t.is(statSync(path).mode & 0o777, 0o600);
    t.regex(readFileSync(path, 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
    const loaded = await loadKeyFile(path);
    t.is(loaded.keyId, generated.keyId);
    const signature = Buffer.from(await loaded.sign(Buffer.from('x'))).toString('hex');
    t.true(verifyWithKey(generated.publicKey, Buffer.from('x'), signature));
  });
}

test('a private key file readable by others is refused, naming the file and the fix', async (t) => {
  const path = join(dir(), 'key.pem');
  await generateKeyFile(path, 'ed25519');
  chmodSync(path, 0o644);
  const error = await t.throwsAsync(loadKeyFile(path), { instanceOf: BrlError });
  t.regex(error!.message, /key\.pem has mode 0644: a private key must not be readable or writable by group or others/);
  t.is(error!.hint, `chmod 600 ${path}`);
  t.is(error!.exitCode, ExitCode.badInput);
  chmodSync(path, 0o640);
  await t.throwsAsync(loadKeyFile(path), { message: /mode 0640/ });
});

test('an existing key file is never overwritten', async (t) => {
  const path = join(dir(), 'key.pem');
  await generateKeyFile(path, 'ed25519');
  const before = readFileSync(path);
  await t.throwsAsync(generateKeyFile(path, 'ed25519'), { message: /already exists/ });
  t.deepEqual(readFileSync(path), before);
});

test('PKCS#1 RSA and SEC1 EC keys load; encrypted keys and other curves are refused', async (t) => {
  const base = dir();
  const write = (name: string, pem: string) => {
    const path = join(base, name);
    writeFileSync(path, pem, { mode: 0o600 });
    return path;
  };
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
  t.is((await loadKeyFile(write('rsa1.pem', rsa))).publicKey.keytype, 'rsa');
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string;
  t.is((await loadKeyFile(write('ec.pem', ec))).publicKey.keytype, 'ecdsa');
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  await t.throwsAsync(loadKeyFile(write('p384.pem', p384)), { message: /ec \(secp384r1\) is not supported/ });
  const encrypted = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }) as string;
  await t.throwsAsync(loadKeyFile(write('enc.pem', encrypted)), { message: /encrypted/ });
});

test('key sources parse like tuftool key URLs', (t) => {
  t.deepEqual(parseKeySource('keys/a.pem'), { kind: 'file', path: 'keys/a.pem' });
  t.deepEqual(parseKeySource('file:///etc/k.pem'), { kind: 'file', path: '/etc/k.pem' });
  t.deepEqual(parseKeySource('aws-kms:///alias/release'), { kind: 'kms', keyId: 'alias/release' });
  t.deepEqual(parseKeySource('aws-kms://prod/1234'), { kind: 'kms', keyId: '1234', profile: 'prod' });
  t.deepEqual(parseKeySource('aws-ssm:///brl/key'), { kind: 'ssm', parameter: '/brl/key' });
  t.throws(() => parseKeySource('gcp-kms:///x'), { message: /unknown scheme/ });
});
