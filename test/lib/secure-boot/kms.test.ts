// Secure Boot signatures through a KMS key (the wire-level KMS fake): the same Signer path a production build would take, checked by sbverify and gpgv.
import test from 'ava';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { signPeImage } from '../../../src/lib/secure-boot/authenticode.ts';
import { detachedSignature, transferablePublicKey } from '../../../src/lib/secure-boot/openpgp.ts';
import { createCertificate, distinguishedName, toPem } from '../../../src/lib/secure-boot/x509.ts';
import { KmsSigner } from '../../../src/lib/signing/kms-signer.ts';
import { PrivateKeySigner } from '../../../src/lib/signing/pem-signer.ts';
import { publicKeyObject } from '../../../src/lib/tuf/key.ts';
import { startKmsFake, useKmsFake } from '../signing/kms-fake.ts';
import { makePeImage } from './pe-fixture.ts';

const run = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), 'brl-sb-kms-'));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

test.serial('a KMS code-signing key signs an EFI image that sbverify accepts with db', async (t) => {
  const fake = await startKmsFake();
  t.teardown(() => fake.close());
  useKmsFake(fake);
  const signer = await KmsSigner.create(fake.keyId);
  const db = new PrivateKeySigner(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'test:db');
  const dbName = distinguishedName('brl test', 'db');
  const validity = { notBefore: new Date('2026-01-01T00:00:00Z'), notAfter: new Date('2036-01-01T00:00:00Z') };
  const dbCertificate = await createCertificate({ subject: dbName, subjectPublicKey: publicKeyObject(db.publicKey), serial: 1n, ...validity, ca: true, selfSigner: db });
  const certificate = await createCertificate({
    subject: distinguishedName('brl test', 'code signing in KMS'),
    subjectPublicKey: fake.publicKey,
    serial: 2n,
    ...validity,
    ca: false,
    issuer: { name: dbName, signer: db },
  });
  writeFileSync(join(scratch, 'db.crt'), toPem(dbCertificate));
  writeFileSync(join(scratch, 'image.efi'), await signPeImage(makePeImage(), { signer, certificate }, 'image.efi'));
  const { stdout } = await run('sbverify', ['--cert', join(scratch, 'db.crt'), join(scratch, 'image.efi')]);
  t.regex(stdout, /Signature verification OK/);
  t.true(fake.calls.includes('TrentService.Sign'));
});

test.serial('a KMS GRUB key makes OpenPGP signatures that gpgv accepts', async (t) => {
  const fake = await startKmsFake();
  t.teardown(() => fake.close());
  useKmsFake(fake);
  const signer = await KmsSigner.create(fake.keyId);
  const key = { publicKey: fake.publicKey, creationTime: 1_767_225_600 };
  const data = Buffer.from('grub.cfg contents\n');
  writeFileSync(join(scratch, 'grub.gpg'), await transferablePublicKey(signer, key, 'brl GRUB in KMS'));
  writeFileSync(join(scratch, 'grub.cfg'), data);
  writeFileSync(join(scratch, 'grub.cfg.sig'), await detachedSignature(signer, key, data, 1_780_000_000));
  const { stderr } = await run('gpgv', ['--homedir', scratch, '--keyring', join(scratch, 'grub.gpg'), join(scratch, 'grub.cfg.sig'), join(scratch, 'grub.cfg')]);
  t.regex(stderr, /Good signature from "brl GRUB in KMS"/);
});
