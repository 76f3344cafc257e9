// OpenPGP detached signatures and keys written by brl, checked by gpgv and gpg (GnuPG) as GRUB's verifier would check them.
import test from 'ava';
import { execFile } from 'node:child_process';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { detachedSignature, fingerprint, readPublicKey, transferablePublicKey, type OpenPgpPublicKey } from '../../../src/lib/secure-boot/openpgp.ts';
import { PrivateKeySigner } from '../../../src/lib/signing/pem-signer.ts';

const run = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), 'brl-openpgp-'));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

function rsaKey(creationTime: number): { signer: PrivateKeySigner; key: OpenPgpPublicKey } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { signer: new PrivateKeySigner(privateKey, 'test:grub'), key: { publicKey: createPublicKey(privateKey), creationTime } };
}

const keyCreated = 1_767_225_600; // 2026-01-01
const grub = rsaKey(keyCreated);
const grubCfg = Buffer.from('set default="0"\nset dm_verity_root="root,,,ro,0 …"\n');

async function gpgv(keyring: Buffer, signature: Buffer, data: Buffer): Promise<{ ok: boolean; output: string }> {
  const dir = mkdtempSync(join(scratch, 'gpgv-'));
  writeFileSync(join(dir, 'keyring.gpg'), keyring);
  writeFileSync(join(dir, 'grub.cfg.sig'), signature);
  writeFileSync(join(dir, 'grub.cfg'), data);
  try {
    const { stderr } = await run('gpgv', ['--homedir', dir, '--keyring', join(dir, 'keyring.gpg'), join(dir, 'grub.cfg.sig'), join(dir, 'grub.cfg')]);
    return { ok: true, output: stderr };
  } catch (error) {
    return { ok: false, output: (error as { stderr: string }).stderr };
  }
}

test('gpgv accepts a detached signature with the key brl wrote, and reports the signature time given', async (t) => {
  const keyring = await transferablePublicKey(grub.signer, grub.key, 'brl GRUB');
  const signature = await detachedSignature(grub.signer, grub.key, grubCfg, 1_780_000_000);
  const result = await gpgv(keyring, signature, grubCfg);
  t.true(result.ok, result.output);
  t.regex(result.output, /Good signature from "brl GRUB"/);
  t.regex(result.output, new RegExp(`using RSA key ${fingerprint(grub.key).toString('hex').toUpperCase()}`));
  t.regex(result.output, /Signature made .*2026/);
});

test('gpgv refuses the signature for a grub.cfg with a changed root hash', async (t) => {
  const keyring = await transferablePublicKey(grub.signer, grub.key, 'brl GRUB');
  const signature = await detachedSignature(grub.signer, grub.key, grubCfg, 1_780_000_000);
  const result = await gpgv(keyring, signature, Buffer.from(grubCfg.toString().replace('root,', 'r00t,')));
  t.false(result.ok);
  t.regex(result.output, /BAD signature/);
});

test('gpgv refuses a signature made by another key', async (t) => {
  const stranger = rsaKey(keyCreated);
  const keyring = await transferablePublicKey(grub.signer, grub.key, 'brl GRUB');
  const result = await gpgv(keyring, await detachedSignature(stranger.signer, stranger.key, grubCfg, 1_780_000_000), grubCfg);
  t.false(result.ok);
  t.regex(result.output, /No public key|Can't check signature/);
});

test('signatures are deterministic, and never dated before the key (which verifiers refuse)', async (t) => {
  const first = await detachedSignature(grub.signer, grub.key, grubCfg, 1_780_000_000);
  t.deepEqual(await detachedSignature(grub.signer, grub.key, grubCfg, 1_780_000_000), first);
  const early = await detachedSignature(grub.signer, grub.key, grubCfg, 1_000_000_000);
  const keyring = await transferablePublicKey(grub.signer, grub.key, 'brl GRUB');
  const result = await gpgv(keyring, early, grubCfg);
  t.true(result.ok, result.output);
  t.regex(result.output, /Signature made .*2026/);
});

test('gpg imports the transferable key with a valid self-certification', async (t) => {
  const home = mkdtempSync(join(scratch, 'gnupg-'));
  const keyFile = join(home, 'grub.gpg');
  writeFileSync(keyFile, await transferablePublicKey(grub.signer, grub.key, 'brl GRUB'));
  await run('gpg', ['--homedir', home, '--batch', '--import', keyFile]);
  const { stdout } = await run('gpg', ['--homedir', home, '--batch', '--with-colons', '--check-sigs']);
  t.regex(stdout, new RegExp(`^fpr:+${fingerprint(grub.key).toString('hex').toUpperCase()}:`, 'm'));
  t.regex(stdout, /^sig:!:/m);
});

test('readPublicKey gets back the RSA key and creation time from brl\'s file and from gpg --export', async (t) => {
  const file = await transferablePublicKey(grub.signer, grub.key, 'brl GRUB');
  const read = readPublicKey(file, 'grub.gpg');
  t.is(read.creationTime, keyCreated);
  t.true(read.publicKey.equals(grub.key.publicKey));
  const home = mkdtempSync(join(scratch, 'gnupg-'));
  writeFileSync(join(home, 'in.gpg'), file);
  await run('gpg', ['--homedir', home, '--batch', '--import', join(home, 'in.gpg')]);
  const exported = await new Promise<Buffer>((resolve, reject) =>
    execFile('gpg', ['--homedir', home, '--batch', '--export'], { encoding: 'buffer' }, (error, stdout) => (error ? reject(error) : resolve(stdout))),
  );
  t.deepEqual(fingerprint(readPublicKey(exported, 'exported')), fingerprint(grub.key));
});

test('a file that is not an OpenPGP public key is refused with its name', (t) => {
  const error = t.throws(() => readPublicKey(Buffer.from('-----BEGIN PGP PUBLIC KEY BLOCK-----\n'), 'keys/grub.gpg'));
  t.is((error as { code?: string }).code, 'BAD_OPENPGP_KEY');
  t.regex(error!.message, /keys\/grub\.gpg/);
});

test('signing with a key that is not the OpenPGP key\'s private half is refused', async (t) => {
  const stranger = rsaKey(keyCreated);
  const error = await t.throwsAsync(detachedSignature(stranger.signer, grub.key, grubCfg, 1_780_000_000));
  t.is((error as { code?: string }).code, 'KEY_MISMATCH');
});

test('keys and signatures use old-format packet headers, which GRUB 2.06 reads correctly at any length', async (t) => {
  const key = await transferablePublicKey(grub.signer, grub.key, 'brl GRUB');
  // Tag 6 (public key) with a two-octet length: 0x80 | 6 << 2 | 1.
  t.is(key[0], 0x99);
  t.is(key.readUInt16BE(1), 269);
  const signature = await detachedSignature(grub.signer, grub.key, grubCfg, 1_780_000_000);
  // Tag 2 (signature), two-octet length, covering the rest of the file.
  t.is(signature[0], 0x89);
  t.is(signature.readUInt16BE(1), signature.length - 3);
});
