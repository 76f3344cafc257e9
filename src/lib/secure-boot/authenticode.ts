// Authenticode signing of EFI binaries (GRUB, the kernel): a PKCS#7 SignedData over the PE image hash, what UEFI firmware checks against db.
import { createHash, X509Certificate } from 'node:crypto';
import { BrlError, ExitCode } from '../core/errors.ts';
import type { Signer } from '../signing/signer.ts';
import { publicKeyObject } from '../tuf/key.ts';
import { bmpBytes, contextConstructed, contextPrimitive, integer, objectId, octetString, readElement, sequence, setOf, tlv } from './der.ts';
import { PeFormatError, attachSignature, authenticodeHash, unsignedImage } from './pe-image.ts';
import { algorithmIdentifier, issuerAndSerial, oids } from './x509.ts';

const authenticodeOids = {
  signedData: '1.2.840.113549.1.7.2',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  spcIndirectData: '1.3.6.1.4.1.311.2.1.4',
  spcPeImageData: '1.3.6.1.4.1.311.2.1.15',
} as const;

/** The key that signs EFI binaries and its certificate (issued by db, or db itself). */
export interface CodeSigningIdentity {
  signer: Signer;
  /** DER. */
  certificate: Buffer;
  /** Certificates between the signer's and the one in db, DER; sent along for the firmware to build the chain. */
  intermediates?: Buffer[];
}

/** Throws unless the identity's certificate holds the signer's public key. */
export function assertIdentityMatches(identity: CodeSigningIdentity): void {
  const certificate = new X509Certificate(identity.certificate);
  if (!certificate.publicKey.equals(publicKeyObject(identity.signer.publicKey))) {
    throw new BrlError(`${identity.signer.source} is not the key of the code-signing certificate "${certificate.subject.replaceAll('\n', ', ')}"`, {
      hint: 'use the code-sign.key and code-sign.crt written together by brl keys secure-boot init',
      exitCode: ExitCode.badInput,
      code: 'KEY_MISMATCH',
    });
  }
}

/** SpcIndirectDataContent: "a PE image, whose hash is this". */
function indirectDataContent(imageHash: Buffer): Buffer {
  // SpcPeImageData: no flags, and the file link every signer writes: an obsolete UTF-16 placeholder.
  const peImageData = sequence(tlv(0x03, Buffer.from([0])), contextConstructed(0, contextConstructed(2, contextPrimitive(0, bmpBytes('<<<Obsolete>>>')))));
  return sequence(
    sequence(objectId(authenticodeOids.spcPeImageData), peImageData),
    sequence(algorithmIdentifier(oids.sha256), octetString(imageHash)),
  );
}

/** PKCS#7 SignedData over `imageHash`. No signing time: the same key and image give the same bytes. */
export async function authenticodeSignedData(imageHash: Buffer, identity: CodeSigningIdentity): Promise<Buffer> {
  const content = indirectDataContent(imageHash);
  // The message digest covers the content's value, without its SEQUENCE tag and length (Authenticode's rule).
  const attributes = setOf(
    sequence(objectId(authenticodeOids.contentType), setOf(objectId(authenticodeOids.spcIndirectData))),
    sequence(objectId(authenticodeOids.messageDigest), setOf(octetString(createHash('sha256').update(readElement(content).contents).digest()))),
  );
  // Signed as a SET OF (tag 0x31), stored as [0] IMPLICIT.
  const signature = await identity.signer.sign(attributes, 'rsa-pkcs1v15-sha256');
  const { issuer, serial } = issuerAndSerial(identity.certificate);
  const signerInfo = sequence(
    integer(1n),
    sequence(issuer, serial),
    algorithmIdentifier(oids.sha256),
    tlv(0xa0, readElement(attributes).contents),
    algorithmIdentifier(oids.rsaEncryption),
    octetString(signature),
  );
  const signedData = sequence(
    integer(1n),
    setOf(algorithmIdentifier(oids.sha256)),
    sequence(objectId(authenticodeOids.spcIndirectData), contextConstructed(0, content)),
    contextConstructed(0, Buffer.concat([identity.certificate, ...(identity.intermediates ?? [])])),
    setOf(signerInfo),
  );
  return sequence(objectId(authenticodeOids.signedData), contextConstructed(0, signedData));
}

/**
 * Signs a PE image (an EFI application or a kernel with an EFI stub). An existing signature is
 * replaced, so the binary carries the project's signature only (Debian's signed kernel included).
 */
export async function signPeImage(image: Buffer, identity: CodeSigningIdentity, source: string): Promise<Buffer> {
  assertIdentityMatches(identity);
  let unsigned: Buffer;
  try {
    unsigned = unsignedImage(image);
  } catch (error) {
    if (!(error instanceof PeFormatError)) throw error;
    throw new BrlError(`${source} is not a PE image Authenticode can sign: ${error.message}`, {
      hint: 'sign EFI applications and kernels built with an EFI stub (CONFIG_EFI_STUB)',
      exitCode: ExitCode.badInput,
      code: 'NOT_A_PE_IMAGE',
    });
  }
  return attachSignature(unsigned, await authenticodeSignedData(authenticodeHash(unsigned), identity));
}
