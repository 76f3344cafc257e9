import test from 'ava';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { keyIdMatches, keyIdOf, keyJsonFromPublicKey, verifyWithKey, type KeyJson } from '../../../src/lib/tuf/key.ts';
import { PrivateKeySigner } from '../../../src/lib/signing/pem-signer.ts';

// RFC 8032 §7.1 test 1: a fixed Ed25519 key and its signature of the empty message.
const rfc8032Secret = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const rfc8032Public = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const rfc8032EmptySignature = 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';

function rfc8032Signer(): PrivateKeySigner {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(rfc8032Secret, 'hex')]);
  return new PrivateKeySigner(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }), 'test');
}

test('an Ed25519 key is hex in keyval and its key ID is the sha256 of its canonical JSON (golden)', (t) => {
  const signer = rfc8032Signer();
  t.deepEqual(signer.publicKey, { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: rfc8032Public } });
  // printf '{"keytype":"ed25519","keyval":{"public":"d75a…511a"},"scheme":"ed25519"}' | sha256sum
  t.is(signer.keyId, '74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916');
});

test('Ed25519 signing reproduces the RFC 8032 signature', async (t) => {
  const signature = Buffer.from(await rfc8032Signer().sign(new Uint8Array())).toString('hex');
  t.is(signature, rfc8032EmptySignature);
  t.true(verifyWithKey(rfc8032Signer().publicKey, new Uint8Array(), signature));
});

test('RSA and ECDSA keys are SPKI PEM with the TUF schemes, and sign/verify round-trips', async (t) => {
  const rsa = new PrivateKeySigner(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'rsa');
  const ec = new PrivateKeySigner(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey, 'ec');
  t.is(rsa.publicKey.scheme, 'rsassa-pss-sha256');
  t.is(ec.publicKey.scheme, 'ecdsa-sha2-nistp256');
  for (const signer of [rsa, ec]) {
    t.regex(signer.publicKey.keyval.public, /^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----$/);
    const data = Buffer.from('signed bytes');
    const signature = Buffer.from(await signer.sign(data)).toString('hex');
    t.true(verifyWithKey(signer.publicKey, data, signature));
    t.false(verifyWithKey(signer.publicKey, Buffer.from('other bytes'), signature));
  }
});

test('RSA-PSS signatures use a 32-byte salt (verifiable with that salt length only)', async (t) => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signer = new PrivateKeySigner(privateKey, 'rsa');
  const data = Buffer.from('x');
  const signature = Buffer.from(await signer.sign(data));
  const { verify, constants } = await import('node:crypto');
  const publicKey = createPublicKey(privateKey);
  t.true(verify('sha256', data, { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature));
  t.false(verify('sha256', data, { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 20 }, signature));
});

test('a key ID over only keytype, scheme and keyval is accepted for keys with extra fields', (t) => {
  const key = { ...keyJsonFromPublicKey(rfc8032Key()), 'x-owner': '@me' } as KeyJson;
  const coreId = keyIdOf({ keytype: key.keytype, scheme: key.scheme, keyval: key.keyval } as KeyJson);
  t.true(keyIdMatches(keyIdOf(key), key));
  t.true(keyIdMatches(coreId, key));
  t.false(keyIdMatches(coreId.replace(/^./, (c) => (c === '0' ? '1' : '0')), key));
});

function rfc8032Key() {
  return createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(rfc8032Public, 'hex')]), format: 'der', type: 'spki' });
}
