// Detached OpenPGP signatures checked by brl: made by GnuPG (gpg --detach-sign) and by brl's signer, refused with a reason when changed.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detachedSignature, readPublicKey, type OpenPgpPublicKey } from '../../../src/lib/secure-boot/openpgp.ts';
import { verifyDetachedSignature } from '../../../src/lib/secure-boot/openpgp-verify.ts';
import { PrivateKeySigner } from '../../../src/lib/signing/pem-signer.ts';

const scratch = mkdtempSync(join(tmpdir(), 'brl-openpgp-verify-'));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

const data = Buffer.from('set default="0"\nset dm_verity_root="root,,,ro,0 8 verity 1 … 4f2c…"\n');

/** A GnuPG home with one RSA signing key: its exported public key, and a function signing with gpg --detach-sign. */
function gnupgKey(name: string, bits = 2048): { publicKey: OpenPgpPublicKey; keyring: Buffer; sign: (bytes: Buffer, digest: string) => Buffer } {
  const home = mkdtempSync(join(scratch, 'gnupg-'));
  const gpg = (args: string[], input?: Buffer) =>
    execFileSync('gpg', ['--homedir', home, '--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { input, stdio: ['pipe', 'pipe', 'pipe'] });
  gpg(['--quick-gen-key', `${name} <${name}@example.test>`, `rsa${bits}`, 'sign', 'never']);
  const keyring = gpg(['--export', name]);
  return {
    publicKey: readPublicKey(keyring, `${name}.gpg`),
    keyring,
    sign: (bytes, digest) => {
      writeFileSync(join(home, 'data'), bytes);
      rmSync(join(home, 'data.sig'), { force: true });
      gpg(['--digest-algo', digest, '--detach-sign', '--output', join(home, 'data.sig'), join(home, 'data')]);
      return readFileSync(join(home, 'data.sig'));
    },
  };
}

const project = gnupgKey('project');
const other = gnupgKey('other');

function reason(signature: Buffer, key: OpenPgpPublicKey = project.publicKey, signed: Buffer = data): string {
  try {
    verifyDetachedSignature(signed, signature, key, 'grub.cfg.sig');
  } catch (error) {
    if ((error as { code?: string }).code !== 'BAD_SIGNATURE') throw error;
    return (error as Error).message;
  }
  return 'verified';
}

/** The same packet body under a new-format header (RFC 4880 §4.2.2); the header is not signed, so the signature stays valid. */
function asNewFormat(signature: Buffer): Buffer {
  const lengthType = signature[0]! & 0x03;
  const headerLength = 1 + [1, 2, 4][lengthType]!;
  const body = signature.subarray(headerLength);
  // An RSA signature body is a few hundred bytes: the two-octet form (192..8383) fits it.
  if (body.length < 192 || body.length > 8383) throw new Error(`unexpected signature body of ${body.length} bytes`);
  const length = Buffer.from([((body.length - 192) >> 8) + 192, (body.length - 192) & 0xff]);
  return Buffer.concat([Buffer.from([0xc0 | 2]), length, body]);
}

test('signatures made by gpg --detach-sign with SHA-256 and SHA-512 verify', (t) => {
  t.is(reason(project.sign(data, 'SHA256')), 'verified');
  t.is(reason(project.sign(data, 'SHA512')), 'verified');
});

test('gpg\'s old-format signature verifies under a new-format header too, as gpgv agrees', (t) => {
  const signature = project.sign(data, 'SHA256');
  t.is(signature[0]! & 0x40, 0, 'gpg writes old-format packets');
  const reframed = asNewFormat(signature);
  t.is(reframed[0], 0xc2);
  t.is(reason(reframed), 'verified');
  const home = mkdtempSync(join(scratch, 'gpgv-'));
  writeFileSync(join(home, 'keyring.gpg'), project.keyring);
  writeFileSync(join(home, 'data'), data);
  writeFileSync(join(home, 'data.sig'), reframed);
  t.notThrows(() => execFileSync('gpgv', ['--homedir', home, '--keyring', join(home, 'keyring.gpg'), join(home, 'data.sig'), join(home, 'data')], { stdio: 'pipe' }));
});

test('a signature made by brl\'s signer (issuer key ID unhashed, as GRUB wants) verifies', async (t) => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const key = { publicKey: createPublicKey(privateKey), creationTime: 1_767_225_600 };
  const signature = await detachedSignature(new PrivateKeySigner(privateKey, 'test:grub'), key, data, 1_780_000_000);
  t.is(reason(signature, key), 'verified');
  t.regex(reason(signature, project.publicKey), /was made by key [0-9A-F]+, not by the trusted key [0-9A-F]+/);
});

test('a flipped byte in the data is refused as not matching it', (t) => {
  const signature = project.sign(data, 'SHA256');
  const changed = Buffer.from(data);
  const at = changed.indexOf('4f2c');
  changed[at] = changed[at]! ^ 0x01;
  t.regex(reason(signature, project.publicKey, changed), /grub\.cfg\.sig: (does not match the data|the RSA signature does not verify)/);
});

test('a flipped byte in the RSA value is refused as not verifying with the trusted key', (t) => {
  const signature = Buffer.from(project.sign(data, 'SHA256'));
  signature[signature.length - 10] = signature[signature.length - 10]! ^ 0x01;
  t.regex(reason(signature), /the RSA signature does not verify with the trusted key/);
});

test('a signature by another key is refused, naming both keys', (t) => {
  t.regex(reason(other.sign(data, 'SHA256')), /was made by key [0-9A-F]{40}, not by the trusted key [0-9A-F]{40}/);
});

test('a truncated, empty or non-signature file is refused with the reason', (t) => {
  const signature = project.sign(data, 'SHA256');
  t.regex(reason(signature.subarray(0, signature.length - 1)), /the packet declares \d+ bytes but \d+ follow its header/);
  t.regex(reason(signature.subarray(0, 2)), /the packet (header is truncated|declares)/);
  t.regex(reason(Buffer.alloc(0)), /the signature file is empty/);
  t.regex(reason(Buffer.from('-----BEGIN PGP SIGNATURE-----\n')), /not an OpenPGP packet/);
  t.regex(reason(Buffer.concat([signature, Buffer.from([0])])), /1 bytes follow the signature packet/);
  t.regex(reason(project.keyring), /holds a tag-6 packet, not a signature \(2\)/);
});

test('a SHA-1 signature is refused by its hash algorithm', (t) => {
  t.regex(reason(project.sign(data, 'SHA1')), /uses hash algorithm 2; only SHA-256 \(8\) and SHA-512 \(10\) are accepted/);
});
