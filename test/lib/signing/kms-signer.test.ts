import test from 'ava';
import { verify, constants } from 'node:crypto';
import { KmsSigner, padToModulus } from '../../../src/lib/signing/kms-signer.ts';
import { openSigner, parseKeySource } from '../../../src/lib/signing/key-source.ts';
import { keyJsonFromPublicKey, keyIdOf, verifyWithKey } from '../../../src/lib/tuf/key.ts';
import { startKmsFake, useKmsFake } from './kms-fake.ts';
import { GetPublicKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { changeAfterSigning, forgeSignature } from '../../fakes/aws/middleware.ts';
import { fakeCredentials } from '../../fakes/aws/sigv4.ts';

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

test.serial('KMS refuses a wrong secret (InvalidSignatureException) and an unknown access key (UnrecognizedClientException)', async (t) => {
  const fake = await startKmsFake();
  t.teardown(() => fake.close());
  useKmsFake(fake);
  process.env.AWS_SECRET_ACCESS_KEY = 'wrong-secret';
  const wrongSecret = await t.throwsAsync(KmsSigner.create(fake.keyId), { message: /KMS refused the AWS credentials for .*: InvalidSignatureException: The request signature we calculated does not match/ });
  t.is((wrongSecret as { code?: string }).code, 'KMS_CREDENTIALS');
  process.env.AWS_SECRET_ACCESS_KEY = fakeCredentials.secretAccessKey;
  process.env.AWS_ACCESS_KEY_ID = 'AKIAUNKNOWNUNKNOWN00';
  await t.throwsAsync(KmsSigner.create(fake.keyId), { message: /UnrecognizedClientException: The security token included in the request is invalid/ });
  t.deepEqual(fake.calls, [], 'no refused request reached an operation');
});

test.serial('KMS refuses a forged signature with HTTP 400 InvalidSignatureException', async (t) => {
  const fake = await startKmsFake();
  t.teardown(() => fake.close());
  const client = new KMSClient({ endpoint: fake.url, region: 'us-west-2', credentials: fakeCredentials, maxAttempts: 1 });
  changeAfterSigning(client, forgeSignature);
  const error = await t.throwsAsync(client.send(new GetPublicKeyCommand({ KeyId: fake.keyId })));
  t.is(error?.name, 'InvalidSignatureException');
  t.is((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 400);
  t.deepEqual(fake.calls, []);
});

test.serial('padding leaves full-length signatures alone', (t) => {
  t.deepEqual(padToModulus(new Uint8Array([1, 2]), 4), new Uint8Array([0, 0, 1, 2]));
  t.deepEqual(padToModulus(new Uint8Array([1, 2, 3, 4]), 4), new Uint8Array([1, 2, 3, 4]));
});
