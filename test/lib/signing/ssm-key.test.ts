import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { openSigner, parseKeySource } from '../../../src/lib/signing/key-source.ts';
import { keyJsonFromPublicKey, verifyWithKey } from '../../../src/lib/tuf/key.ts';
import { withFakeAws } from '../../fakes/aws/harness.ts';

test.serial('an SSM SecureString holding a PEM key signs, fetched with decryption through the real SDK', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  await withFakeAws({}, async (fake) => {
    // The fake returns ciphertext for a SecureString read without decryption, so the key must be asked for decrypted.
    fake.state.parameters.set('us-west-2\0/brl/signing-key', {
      name: '/brl/signing-key', value: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, type: 'SecureString', dataType: 'text', version: 1, lastModified: new Date(),
    });
    const signer = await openSigner(parseKeySource('aws-ssm:///brl/signing-key'));
    t.is(fake.state.count('GetParameter', 'us-west-2'), 1);
    t.deepEqual(signer.publicKey, keyJsonFromPublicKey(publicKey));
    t.is(signer.source, 'aws-ssm:///brl/signing-key');
    t.notRegex(JSON.stringify(signer), /PRIVATE/);
    const signature = Buffer.from(await signer.sign(Buffer.from('x'))).toString('hex');
    t.true(verifyWithKey(signer.publicKey, Buffer.from('x'), signature));
  });
});

test.serial('an SSM key read with a wrong secret is refused by the endpoint and reported with the parameter name', async (t) => {
  await withFakeAws({}, async (fake) => {
    process.env.AWS_SECRET_ACCESS_KEY = 'not-the-secret';
    await t.throwsAsync(openSigner(parseKeySource('aws-ssm:///brl/signing-key')), {
      message: /cannot read SSM parameter \/brl\/signing-key: The request signature we calculated does not match/,
    });
    t.is(fake.state.count('GetParameter'), 0);
  });
});
