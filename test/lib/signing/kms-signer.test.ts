import test from 'ava';
import { verify, constants } from 'node:crypto';
import { KmsSigner, padToModulus } from '../../../src/lib/signing/kms-signer.ts';
import { openSigner, parseKeySource } from '../../../src/lib/signing/key-source.ts';
import { keyJsonFromPublicKey, keyIdOf, verifyWithKey } from '../../../src/lib/tuf/key.ts';
import { startKmsFake, useKmsFake } from './kms-fake.ts';

test.serial('a KMS key signs the SHA-256 digest with RSASSA-PSS, verifiable by the key from GetPublicKey', async (t) => {
  const fake = await startKmsFake();
  t.teardown(() => fake.close());
  useKmsFake(fake);
  const signer = await openSigner(parseKeySource(`aws-kms:///${fake.keyId}`));
  t.deepEqual(signer.publicKey, keyJsonFromPublicKey(fake.publicKey));
  t.is(signer.keyId, keyIdOf(keyJsonFromPublicKey(fake.publicKey)));
  t.is(signer.source, `aws-kms:///${fake.keyId}`);
  const data = Buffer.from('{"signed":"canonical bytes"}');
  const signature = Buffer.from(await signer.sign(data));
  t.true(verify('sha256', data, { key: fake.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature));
  t.true(verifyWithKey(signer.publicKey, data, signature.toString('hex')));
  t.deepEqual(fake.calls, ['TrentService.GetPublicKey', 'TrentService.Sign']);
});

test.serial('a KMS signature shorter than the modulus is left-padded with zero bytes to 256 bytes', async (t) => {
  const fake = await startKmsFake({ stripLeadingZeros: true });
  t.teardown(() => fake.close());
  useKmsFake(fake);
  const signer = await KmsSigner.create(fake.keyId);
  const data = Buffer.from('payload');
  const signature = Buffer.from(await signer.sign(data));
  t.true(fake.signatures[0]!.length < 256, 'the fake returned a short signature');
  t.is(signature.length, 256);
  t.deepEqual(signature.subarray(256 - fake.signatures[0]!.length), fake.signatures[0]);
  t.true(verifyWithKey(signer.publicKey, data, signature.toString('hex')));
});

test.serial('an unknown KMS key is a clear not-found error', async (t) => {
  const fake = await startKmsFake();
  t.teardown(() => fake.close());
  useKmsFake(fake);
  await t.throwsAsync(KmsSigner.create('no-such-key'), { message: /KMS key no-such-key: NotFoundException/ });
});

test.serial('a KMS key that cannot sign RSA-PSS is refused', async (t) => {
  const fake = await startKmsFake({ keySpec: 'ECC_NIST_P256' });
  t.teardown(() => fake.close());
  useKmsFake(fake);
  await t.throwsAsync(KmsSigner.create(fake.keyId), { message: /ECC_NIST_P256\) cannot sign with RSASSA_PSS_SHA_256/ });
});

test.serial('padding leaves full-length signatures alone', (t) => {
  t.deepEqual(padToModulus(new Uint8Array([1, 2]), 4), new Uint8Array([0, 0, 1, 2]));
  t.deepEqual(padToModulus(new Uint8Array([1, 2, 3, 4]), 4), new Uint8Array([1, 2, 3, 4]));
});
