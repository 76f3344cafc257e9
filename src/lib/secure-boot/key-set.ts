// The project's Secure Boot key set in one directory: made once by `brl keys secure-boot init`, read by image builds, never made by one.
import { randomBytes, X509Certificate } from 'node:crypto';
import { allInOrder } from '../core/concurrency.ts';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { fsyncDirectory, readUserFile } from '../core/fs.ts';
import { generateKeyFile } from '../signing/key-file.ts';
import { keySourceUrl, openSigner, type KeySource } from '../signing/key-source.ts';
import type { Signer } from '../signing/signer.ts';
import { publicKeyObject } from '../tuf/key.ts';
import { assertIdentityMatches, type CodeSigningIdentity } from './authenticode.ts';
import { fingerprint, keyId, readPublicKey, transferablePublicKey, type OpenPgpPublicKey } from './openpgp.ts';
import { createCertificate, distinguishedName, parseCertificate, toPem } from './x509.ts';

/** File names in a key set directory. The private keys of PK, KEK and db are needed only to issue or enroll, never by a build. */
export const keySetFiles = {
  pkKey: 'PK.key',
  pkCertificate: 'PK.crt',
  kekKey: 'KEK.key',
  kekCertificate: 'KEK.crt',
  dbKey: 'db.key',
  dbCertificate: 'db.crt',
  codeSigningKey: 'code-sign.key',
  codeSigningCertificate: 'code-sign.crt',
  grubKey: 'grub.key',
  /** GRUB's embedded public key (grub-mkimage --pubkey), also a keyring for gpgv. */
  grubPublicKey: 'grub.gpg',
} as const;

export const secureBootKeyBits = [2048, 3072, 4096] as const;

export interface KeySetOptions {
  /** The certificates' organization (O=) and the OpenPGP user ID's name. */
  organization: string;
  validDays: number;
  rsaBits: (typeof secureBootKeyBits)[number];
  /** The certificates' notBefore and the OpenPGP key's creation time; default now. */
  now?: Date;
}

export interface CertificateSummary {
  file: string;
  subject: string;
  issuer: string;
  notAfter: string;
  /** SHA-256 of the DER certificate, as `openssl x509 -fingerprint -sha256` prints it. */
  sha256: string;
}

export interface KeySetSummary {
  dir: string;
  certificates: CertificateSummary[];
  grubKey: { file: string; fingerprint: string; keyId: string };
  privateKeys: string[];
}

function randomSerial(): bigint {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return BigInt(`0x${bytes.toString('hex')}`);
}

function summarize(file: string, certificate: X509Certificate): CertificateSummary {
  const oneLine = (name: string) => name.split('\n').join(', ');
  return { file, subject: oneLine(certificate.subject), issuer: oneLine(certificate.issuer), notAfter: new Date(certificate.validTo).toISOString(), sha256: certificate.fingerprint256 };
}

/**
 * Writes a new key set into `dir`, which must not exist or be empty. Everything is made in a
 * sibling temp directory and renamed into place, so a failure leaves no partial key set.
 * PK, KEK and db are self-signed CAs; the code-signing certificate is issued by db, so the
 * key that signs every build can be replaced (or kept in KMS) without enrolling firmware again.
 */
export async function initKeySet(dir: string, options: KeySetOptions): Promise<KeySetSummary> {
  const target = resolve(dir);
  if (existsSync(target) && (await readdir(target)).length > 0) {
    throw new BrlError(`${target} is not empty`, {
      hint: 'give a new directory; brl never overwrites Secure Boot keys',
      exitCode: ExitCode.conflict,
      code: 'KEYS_EXIST',
    });
  }
  const staging = join(dirname(target), `.tmp-${process.pid}-${basename(target)}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true, mode: 0o700 });
  try {
    const summary = await writeKeySet(staging, options);
    if (existsSync(target)) await rmdir(target);
    await rename(staging, target);
    await fsyncDirectory(dirname(target));
    return { ...summary, dir: target };
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

async function writeKeySet(dir: string, options: KeySetOptions): Promise<Omit<KeySetSummary, 'dir'>> {
  const now = new Date(Math.floor((options.now ?? new Date()).getTime() / 1000) * 1000);
  const notAfter = new Date(now.getTime() + options.validDays * 86_400_000);
  const generate = (file: string) => generateKeyFile(join(dir, file), 'rsa', { rsaBits: options.rsaBits });
  const certificates: CertificateSummary[] = [];
  const writeCertificate = async (file: string, der: Buffer) => {
    await writeFile(join(dir, file), toPem(der), { mode: 0o644 });
    certificates.push(summarize(file, new X509Certificate(der)));
  };
  const selfSigned = async (signer: Signer, commonName: string) =>
    createCertificate({
      subject: distinguishedName(options.organization, commonName),
      subjectPublicKey: publicKeyObject(signer.publicKey),
      serial: randomSerial(),
      notBefore: now,
      notAfter,
      ca: true,
      selfSigner: signer,
    });
  const pk = await generate(keySetFiles.pkKey);
  await writeCertificate(keySetFiles.pkCertificate, await selfSigned(pk, 'Secure Boot Platform Key'));
  const kek = await generate(keySetFiles.kekKey);
  await writeCertificate(keySetFiles.kekCertificate, await selfSigned(kek, 'Secure Boot Key Exchange Key'));
  const db = await generate(keySetFiles.dbKey);
  const dbName = distinguishedName(options.organization, 'Secure Boot Signature Database Key');
  await writeCertificate(keySetFiles.dbCertificate, await selfSigned(db, 'Secure Boot Signature Database Key'));
  const codeSigning = await generate(keySetFiles.codeSigningKey);
  const codeSigningCertificate = await createCertificate({
    subject: distinguishedName(options.organization, 'Secure Boot Code Signing'),
    subjectPublicKey: publicKeyObject(codeSigning.publicKey),
    serial: randomSerial(),
    notBefore: now,
    notAfter,
    ca: false,
    issuer: { name: dbName, signer: db },
  });
  await writeCertificate(keySetFiles.codeSigningCertificate, codeSigningCertificate);
  const grub = await generate(keySetFiles.grubKey);
  const grubKey: OpenPgpPublicKey = { publicKey: publicKeyObject(grub.publicKey), creationTime: now.getTime() / 1000 };
  await writeFile(join(dir, keySetFiles.grubPublicKey), await transferablePublicKey(grub, grubKey, `${options.organization} GRUB`), { mode: 0o644 });
  return {
    certificates,
    grubKey: { file: keySetFiles.grubPublicKey, fingerprint: fingerprint(grubKey).toString('hex').toUpperCase(), keyId: keyId(grubKey).toString('hex').toUpperCase() },
    privateKeys: [keySetFiles.pkKey, keySetFiles.kekKey, keySetFiles.dbKey, keySetFiles.codeSigningKey, keySetFiles.grubKey],
  };
}

/** The certificates firmware holds (DER): what `brl vm run --secure-boot` enrolls. */
export interface FirmwareCertificates {
  pk: Buffer;
  kek: Buffer;
  db: Buffer;
}

/** PK.crt, KEK.crt and db.crt of a key set; no private key is read. */
export async function loadFirmwareCertificates(dir: string): Promise<FirmwareCertificates> {
  const read = async (file: string) => {
    const path = join(resolve(dir), file);
    return parseCertificate(await readUserFile(path, { what: 'Secure Boot certificate', hint: 'create the key set with brl keys secure-boot init' }), path).raw;
  };
  const [pk, kek, db] = await allInOrder([read(keySetFiles.pkCertificate), read(keySetFiles.kekCertificate), read(keySetFiles.dbCertificate)]);
  return { pk: pk!, kek: kek!, db: db! };
}

/** Where a build takes its Secure Boot keys from: the key set directory, and optionally KMS or SSM for the two signing keys. */
export interface SigningKeyLocations {
  dir: string;
  /** Default: `<dir>/code-sign.key`. */
  codeSigningKey?: KeySource;
  /** Default: `<dir>/grub.key`. */
  grubKey?: KeySource;
}

/** What an image build signs with, checked before anything is written. */
export interface BootSigningKeys extends FirmwareCertificates {
  codeSigning: CodeSigningIdentity;
  grub: { signer: Signer; key: OpenPgpPublicKey; publicKeyFile: Buffer };
}

/**
 * Loads and cross-checks a key set: every certificate parses and is valid at `now`, code-sign.crt
 * is issued by db.crt and holds the code-signing key, grub.gpg holds the GRUB key, both keys are RSA.
 */
export async function loadBootSigningKeys(locations: SigningKeyLocations, now: Date = new Date()): Promise<BootSigningKeys> {
  const dir = resolve(locations.dir);
  const readCertificate = async (file: string) => {
    const path = join(dir, file);
    const bytes = await readUserFile(path, { what: 'Secure Boot certificate', hint: 'create the key set with brl keys secure-boot init' });
    const certificate = parseCertificate(bytes, path);
    if (now < new Date(certificate.validFrom) || now > new Date(certificate.validTo)) {
      throw new BrlError(`${path} is valid from ${new Date(certificate.validFrom).toISOString()} to ${new Date(certificate.validTo).toISOString()}, not at ${now.toISOString()}`, {
        hint: 'issue a new certificate for the key (brl keys secure-boot init makes a new set)',
        exitCode: ExitCode.badInput,
        code: 'CERTIFICATE_EXPIRED',
      });
    }
    return certificate;
  };
  const [pk, kek, db, codeSigningCertificate] = await allInOrder(
    [keySetFiles.pkCertificate, keySetFiles.kekCertificate, keySetFiles.dbCertificate, keySetFiles.codeSigningCertificate].map(readCertificate),
  );
  if (!codeSigningCertificate!.checkIssued(db!) || !codeSigningCertificate!.verify(db!.publicKey)) {
    throw new BrlError(`${join(dir, keySetFiles.codeSigningCertificate)} is not issued by ${join(dir, keySetFiles.dbCertificate)}`, {
      hint: 'firmware trusts only what db holds; use the certificates of one key set',
      exitCode: ExitCode.badInput,
      code: 'CERTIFICATE_CHAIN',
    });
  }
  const codeSigningSource = locations.codeSigningKey ?? { kind: 'file', path: join(dir, keySetFiles.codeSigningKey) };
  const grubSource = locations.grubKey ?? { kind: 'file', path: join(dir, keySetFiles.grubKey) };
  const [codeSigner, grubSigner] = await allInOrder([openSigner(codeSigningSource), openSigner(grubSource)]);
  for (const [signer, source] of [[codeSigner!, codeSigningSource], [grubSigner!, grubSource]] as const) {
    if (signer.publicKey.keytype !== 'rsa') {
      throw new BrlError(`${keySourceUrl(source)} is a ${signer.publicKey.keytype} key; Secure Boot signatures need RSA`, {
        hint: 'UEFI Authenticode and GRUB\'s OpenPGP verifier check RSA PKCS#1 v1.5 signatures only',
        exitCode: ExitCode.badInput,
        code: 'WRONG_KEY_TYPE',
      });
    }
  }
  const codeSigning: CodeSigningIdentity = { signer: codeSigner!, certificate: codeSigningCertificate!.raw };
  assertIdentityMatches(codeSigning);
  const publicKeyPath = join(dir, keySetFiles.grubPublicKey);
  const publicKeyFile = await readUserFile(publicKeyPath, { what: 'GRUB public key', hint: 'create the key set with brl keys secure-boot init' });
  const grubKey = readPublicKey(publicKeyFile, publicKeyPath);
  if (!publicKeyObject(grubSigner!.publicKey).equals(grubKey.publicKey)) {
    throw new BrlError(`${grubSigner!.source} is not the private key of ${publicKeyPath}`, {
      hint: 'use grub.key and grub.gpg from the same key set',
      exitCode: ExitCode.badInput,
      code: 'KEY_MISMATCH',
    });
  }
  return { codeSigning, grub: { signer: grubSigner!, key: grubKey, publicKeyFile }, pk: pk!.raw, kek: kek!.raw, db: db!.raw };
}
