// OpenPGP (RFC 4880) v4 RSA keys and detached SHA-256 signatures: what GRUB's pgp verifier reads (grub.cfg.sig, vmlinuz.sig, initrd.sig).
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { BrlError, ExitCode } from '../core/errors.ts';
import type { Signer } from '../signing/signer.ts';
import { publicKeyObject } from '../tuf/key.ts';

export const packetTag = { signature: 2, publicKey: 6, userId: 13 } as const;
export const publicKeyAlgorithmRsa = 1;
const hashAlgorithmSha256 = 8;
export const signatureType = { binaryDocument: 0x00, positiveCertification: 0x13 } as const;
export const subpacketType = { creationTime: 2, issuerKeyId: 16, keyFlags: 27, issuerFingerprint: 33 } as const;

/** An RSA public key as an OpenPGP v4 key: its creation time is part of the fingerprint. */
export interface OpenPgpPublicKey {
  publicKey: KeyObject;
  /** Seconds since the epoch. */
  creationTime: number;
}

function u16(value: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16BE(value);
  return bytes;
}

function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

/** A multiprecision integer: bit count, then the big-endian bytes without leading zeros. */
function mpi(bytes: Uint8Array): Buffer {
  let start = 0;
  while (start < bytes.length && bytes[start] === 0) start += 1;
  const trimmed = Buffer.from(bytes.subarray(start));
  const bits = trimmed.length === 0 ? 0 : (trimmed.length - 1) * 8 + (32 - Math.clz32(trimmed[0]!));
  return Buffer.concat([u16(bits), trimmed]);
}

/**
 * An old-format packet (RFC 4880 §4.2.1), as gpg writes keys and signatures: GRUB 2.06 reads
 * new-format two-octet lengths without their +192 and would misread a 2048-bit key's packet.
 */
function packet(tag: number, body: Buffer): Buffer {
  const length = body.length < 0x100 ? Buffer.from([body.length]) : body.length < 0x10000 ? u16(body.length) : u32(body.length);
  const lengthType = { 1: 0, 2: 1, 4: 2 }[length.length as 1 | 2 | 4];
  return Buffer.concat([Buffer.from([0x80 | (tag << 2) | lengthType]), length, body]);
}

/** A signature subpacket; brl's are all shorter than 192 bytes, so their length is one octet. */
function subpacket(type: number, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([data.length + 1]), Buffer.from([type]), data]);
}

function rsaNumbers(publicKey: KeyObject): { n: Buffer; e: Buffer } {
  const jwk = publicKey.export({ format: 'jwk' });
  if (publicKey.asymmetricKeyType !== 'rsa' || jwk.n === undefined || jwk.e === undefined) {
    throw new Error(`an OpenPGP key here is RSA, not ${publicKey.asymmetricKeyType}`);
  }
  return { n: Buffer.from(jwk.n, 'base64url'), e: Buffer.from(jwk.e, 'base64url') };
}

export function publicKeyBody(key: OpenPgpPublicKey): Buffer {
  const { n, e } = rsaNumbers(key.publicKey);
  return Buffer.concat([Buffer.from([4]), u32(key.creationTime), Buffer.from([publicKeyAlgorithmRsa]), mpi(n), mpi(e)]);
}

/** The v4 fingerprint: SHA-1 over 0x99, the body length and the public key body. */
export function fingerprint(key: OpenPgpPublicKey): Buffer {
  const body = publicKeyBody(key);
  return createHash('sha1').update(Buffer.from([0x99])).update(u16(body.length)).update(body).digest();
}

/** The key ID: the fingerprint's low 64 bits (what GRUB looks a signature's key up by). */
export function keyId(key: OpenPgpPublicKey): Buffer {
  return fingerprint(key).subarray(12);
}

/**
 * A v4 signature packet over `hashedPrefix` (the document, or the key and user ID being certified).
 * The issuer key ID goes in the unhashed area: GRUB 2.06 looks for it only there.
 */
async function signaturePacket(
  signer: Signer,
  key: OpenPgpPublicKey,
  type: number,
  hashedPrefix: Buffer,
  creationTime: number,
  extraHashedSubpackets: Buffer[] = [],
): Promise<Buffer> {
  const hashedSubpackets = Buffer.concat([
    subpacket(subpacketType.creationTime, u32(creationTime)),
    ...extraHashedSubpackets,
    subpacket(subpacketType.issuerFingerprint, Buffer.concat([Buffer.from([4]), fingerprint(key)])),
  ]);
  const hashedPart = Buffer.concat([Buffer.from([4, type, publicKeyAlgorithmRsa, hashAlgorithmSha256]), u16(hashedSubpackets.length), hashedSubpackets]);
  const signed = Buffer.concat([hashedPrefix, hashedPart, Buffer.from([4, 0xff]), u32(hashedPart.length)]);
  const digest = createHash('sha256').update(signed).digest();
  const signature = await signer.sign(signed, 'rsa-pkcs1v15-sha256');
  const unhashed = subpacket(subpacketType.issuerKeyId, keyId(key));
  return packet(packetTag.signature, Buffer.concat([hashedPart, u16(unhashed.length), unhashed, digest.subarray(0, 2), mpi(signature)]));
}

/** Throws unless `signer` holds the private half of `key`. */
function assertSignerHolds(signer: Signer, key: OpenPgpPublicKey, keySource: string): void {
  if (!publicKeyObject(signer.publicKey).equals(key.publicKey)) {
    throw new BrlError(`${signer.source} is not the private key of the OpenPGP key ${keySource}`, {
      hint: 'use the grub-gpg.key and grub-gpg.pub written together by brl keys secure-boot init',
      exitCode: ExitCode.badInput,
      code: 'KEY_MISMATCH',
    });
  }
}

/**
 * A transferable public key (key, user ID, self-certification): gpgv takes it as a keyring, and
 * grub-mkimage --pubkey embeds it (GRUB reads the key packet and skips the rest).
 */
export async function transferablePublicKey(signer: Signer, key: OpenPgpPublicKey, userId: string): Promise<Buffer> {
  assertSignerHolds(signer, key, userId);
  const body = publicKeyBody(key);
  const userIdBytes = Buffer.from(userId, 'utf8');
  const certified = Buffer.concat([Buffer.from([0x99]), u16(body.length), body, Buffer.from([0xb4]), u32(userIdBytes.length), userIdBytes]);
  // Key flags: certify (0x01) and sign data (0x02).
  const certification = await signaturePacket(signer, key, signatureType.positiveCertification, certified, key.creationTime, [
    subpacket(subpacketType.keyFlags, Buffer.from([0x03])),
  ]);
  return Buffer.concat([packet(packetTag.publicKey, body), packet(packetTag.userId, userIdBytes), certification]);
}

/**
 * A detached binary-document signature of `data`. The same key, data and time give the same bytes
 * (RSA PKCS#1 v1.5 is deterministic). The time is never before the key's creation: verifiers
 * refuse a signature older than its key.
 */
export async function detachedSignature(signer: Signer, key: OpenPgpPublicKey, data: Uint8Array, creationTime: number): Promise<Buffer> {
  assertSignerHolds(signer, key, `with key ID ${keyId(key).toString('hex')}`);
  return signaturePacket(signer, key, signatureType.binaryDocument, Buffer.from(data), Math.max(creationTime, key.creationTime));
}

/** Reads the first public key packet of a binary OpenPGP key (brl's or one exported by gpg). */
export function readPublicKey(bytes: Buffer, source: string): OpenPgpPublicKey {
  const fail = (why: string) =>
    new BrlError(`${source}: ${why}`, {
      hint: 'expected a binary OpenPGP RSA public key (v4), as brl keys secure-boot init writes it',
      exitCode: ExitCode.badInput,
      code: 'BAD_OPENPGP_KEY',
    });
  const { tag, bodyStart: offset, bodyEnd } = readPacketHeader(bytes, 0, fail);
  if (tag !== packetTag.publicKey) throw fail(`the first packet is tag ${tag}, not a public key (6)`);
  if (bytes[offset] !== 4 || bytes[offset + 5] !== publicKeyAlgorithmRsa) throw fail('only v4 RSA keys are supported');
  let position = offset + 6;
  const readMpi = () => {
    if (position + 2 > bodyEnd) throw fail('the key packet is truncated');
    const length = Math.ceil(bytes.readUInt16BE(position) / 8);
    if (position + 2 + length > bodyEnd) throw fail('the key packet is truncated');
    const value = bytes.subarray(position + 2, position + 2 + length);
    position += 2 + length;
    return value;
  };
  const n = readMpi();
  const e = readMpi();
  const creationTime = bytes.readUInt32BE(offset + 1);
  const publicKey = createPublicKey({ key: { kty: 'RSA', n: n.toString('base64url'), e: e.toString('base64url') }, format: 'jwk' });
  return { publicKey, creationTime };
}

/** A packet's tag and where its body lies (RFC 4880 §4.2: old and new formats, definite lengths only). */
export function readPacketHeader(bytes: Buffer, at: number, fail: (why: string) => Error): { tag: number; bodyStart: number; bodyEnd: number } {
  const header = bytes[at];
  if (header === undefined || (header & 0x80) === 0) throw fail('not an OpenPGP packet');
  const need = (count: number) => {
    if (at + 1 + count > bytes.length) throw fail('the packet header is truncated');
  };
  let tag: number;
  let bodyStart: number;
  let length: number;
  if (header & 0x40) {
    tag = header & 0x3f;
    need(1);
    const first = bytes[at + 1]!;
    if (first < 192) [bodyStart, length] = [at + 2, first];
    else if (first < 224) {
      need(2);
      [bodyStart, length] = [at + 3, ((first - 192) << 8) + bytes[at + 2]! + 192];
    } else if (first === 255) {
      need(5);
      [bodyStart, length] = [at + 6, bytes.readUInt32BE(at + 2)];
    } else throw fail('the packet has a partial body length, which no key or signature may have');
  } else {
    tag = (header >> 2) & 0x0f;
    const lengthType = header & 0x03;
    if (lengthType === 3) throw fail('the packet has an indeterminate length');
    const size = [1, 2, 4][lengthType]!;
    need(size);
    bodyStart = at + 1 + size;
    length = size === 1 ? bytes[at + 1]! : size === 2 ? bytes.readUInt16BE(at + 1) : bytes.readUInt32BE(at + 1);
  }
  if (bodyStart + length > bytes.length) throw fail(`the packet declares ${length} bytes but ${bytes.length - bodyStart} follow its header`);
  return { tag, bodyStart, bodyEnd: bodyStart + length };
}
