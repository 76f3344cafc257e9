// X.509 v3 certificates for the Secure Boot chain (PK, KEK, db, code signing), signed through a `Signer` with sha256WithRSAEncryption.
import { createHash, type KeyObject, X509Certificate } from 'node:crypto';
import { BrlError, ExitCode } from '../core/errors.ts';
import type { Signer } from '../signing/signer.ts';
import { publicKeyObject } from '../tuf/key.ts';
import {
  bitString,
  boolean,
  children,
  contextConstructed,
  integer,
  nullValue,
  objectId,
  octetString,
  readElement,
  sequence,
  setOf,
  time,
  tlv,
  utf8String,
  type Der,
} from './der.ts';

export const oids = {
  sha256WithRsa: '1.2.840.113549.1.1.11',
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256: '2.16.840.1.101.3.4.2.1',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extendedKeyUsage: '2.5.29.37',
  codeSigning: '1.3.6.1.5.5.7.3.3',
} as const;

export function algorithmIdentifier(oid: string): Der {
  return sequence(objectId(oid), nullValue);
}

/** A Name with an organization and a common name. */
export function distinguishedName(organization: string, commonName: string): Der {
  const attribute = (oid: string, value: string) => setOf(sequence(objectId(oid), utf8String(value)));
  return sequence(attribute(oids.organization, organization), attribute(oids.commonName, commonName));
}

/** RFC 5280 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = readElement(publicKey.export({ type: 'spki', format: 'der' }));
  const subjectPublicKey = children(spki)[1]!;
  return createHash('sha1').update(subjectPublicKey.contents.subarray(1)).digest();
}

function extension(oid: string, critical: boolean, value: Der): Der {
  return sequence(objectId(oid), ...(critical ? [boolean(true)] : []), octetString(value));
}

/** keyUsage bits: digitalSignature (bit 0) for code signing; plus keyCertSign (5) and cRLSign (6) for CAs. */
function keyUsage(ca: boolean): Der {
  return ca ? tlv(0x03, Buffer.from([1, 0x86])) : tlv(0x03, Buffer.from([7, 0x80]));
}

export interface CertificateSpec {
  subject: Der;
  subjectPublicKey: KeyObject;
  serial: bigint;
  notBefore: Date;
  notAfter: Date;
  /** A CA may issue certificates (PK, KEK, db); an end entity signs code. */
  ca: boolean;
  /** The issuer's name and signer; absent for a self-signed certificate. */
  issuer?: { name: Der; signer: Signer };
  /** The key signing a self-signed certificate (it must hold `subjectPublicKey`'s private half). */
  selfSigner?: Signer;
}

/** Signs and returns a DER certificate. */
export async function createCertificate(spec: CertificateSpec): Promise<Buffer> {
  const signer = spec.issuer?.signer ?? spec.selfSigner;
  if (signer === undefined) throw new Error('a certificate needs an issuer or a self signer');
  const issuerName = spec.issuer?.name ?? spec.subject;
  const authorityKey = keyIdentifier(publicKeyObject(signer.publicKey));
  const extensions = [
    extension(oids.basicConstraints, true, spec.ca ? sequence(boolean(true)) : sequence()),
    extension(oids.keyUsage, true, keyUsage(spec.ca)),
    extension(oids.subjectKeyIdentifier, false, octetString(keyIdentifier(spec.subjectPublicKey))),
    extension(oids.authorityKeyIdentifier, false, sequence(tlv(0x80, authorityKey))),
    ...(spec.ca ? [] : [extension(oids.extendedKeyUsage, false, sequence(objectId(oids.codeSigning)))]),
  ];
  const tbs = sequence(
    contextConstructed(0, integer(2n)),
    integer(spec.serial),
    algorithmIdentifier(oids.sha256WithRsa),
    issuerName,
    sequence(time(spec.notBefore), time(spec.notAfter)),
    spec.subject,
    spec.subjectPublicKey.export({ type: 'spki', format: 'der' }),
    contextConstructed(3, sequence(...extensions)),
  );
  const signature = await signer.sign(tbs, 'rsa-pkcs1v15-sha256');
  return sequence(tbs, algorithmIdentifier(oids.sha256WithRsa), bitString(signature));
}

/** The issuer Name and serial INTEGER exactly as encoded, for PKCS#7's IssuerAndSerialNumber. */
export function issuerAndSerial(certificateDer: Buffer): { issuer: Der; serial: Der } {
  const tbs = children(readElement(certificateDer))[0]!;
  const fields = children(tbs);
  // fields: [0] version, serial, signature algorithm, issuer, …
  return { serial: fields[1]!.raw, issuer: fields[3]!.raw };
}

export function toPem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return ['-----BEGIN CERTIFICATE-----', ...lines, '-----END CERTIFICATE-----', ''].join('\n');
}

/** Parses a PEM or DER certificate, naming `source` when it is neither. */
export function parseCertificate(bytes: Buffer, source: string): X509Certificate {
  try {
    return new X509Certificate(bytes);
  } catch {
    throw new BrlError(`${source}: not an X.509 certificate (PEM or DER)`, {
      hint: 'create the Secure Boot key set with brl keys secure-boot init',
      exitCode: ExitCode.badInput,
      code: 'BAD_CERTIFICATE',
    });
  }
}
