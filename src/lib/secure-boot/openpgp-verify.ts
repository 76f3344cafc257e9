// Checks a detached OpenPGP signature (v4, RSA, SHA-256/512) against one public key, as GRUB's pgp verifier does at boot, so updog can refuse a BOOT that GRUB would refuse.
import { constants, createHash, publicDecrypt } from 'node:crypto';
import { BrlError, ExitCode } from '../core/errors.ts';
import { fingerprint, keyId, packetTag, publicKeyAlgorithmRsa, readPacketHeader, signatureType, subpacketType, type OpenPgpPublicKey } from './openpgp.ts';

/** The hashes a signature may use (RFC 4880 §9.4), with the DER DigestInfo prefix RSASSA-PKCS1-v1_5 puts before the digest (RFC 8017 §9.2). */
const hashAlgorithms = new Map<number, { name: string; digestInfo: Buffer }>([
  [8, { name: 'sha256', digestInfo: Buffer.from('3031300d060960864801650304020105000420', 'hex') }],
  [10, { name: 'sha512', digestInfo: Buffer.from('3051300d060960864801650304020305000440', 'hex') }],
]);

interface Subpacket {
  type: number;
  critical: boolean;
  data: Buffer;
}

/** Subpackets a check here understands; any other marked critical makes the signature unverifiable (RFC 4880 §5.2.3.1). */
const understoodSubpackets = new Set<number>([subpacketType.creationTime, subpacketType.issuerKeyId, subpacketType.issuerFingerprint]);

function readSubpackets(area: Buffer, fail: (why: string) => BrlError): Subpacket[] {
  const subpackets: Subpacket[] = [];
  let at = 0;
  while (at < area.length) {
    const first = area[at]!;
    let length: number;
    if (first < 192) [length, at] = [first, at + 1];
    else if (first < 255) {
      if (at + 2 > area.length) throw fail('a subpacket length is truncated');
      [length, at] = [((first - 192) << 8) + area[at + 1]! + 192, at + 2];
    } else {
      if (at + 5 > area.length) throw fail('a subpacket length is truncated');
      [length, at] = [area.readUInt32BE(at + 1), at + 5];
    }
    if (length === 0 || at + length > area.length) throw fail('a subpacket runs past its area');
    const typeByte = area[at]!;
    subpackets.push({ type: typeByte & 0x7f, critical: (typeByte & 0x80) !== 0, data: area.subarray(at + 1, at + length) });
    at += length;
  }
  return subpackets;
}

/**
 * Throws a `BAD_SIGNATURE` BrlError naming `source` and the reason unless `signature` (one binary
 * OpenPGP signature packet, old or new format) is `key`'s v4 RSA signature of `data` as a binary
 * document: its issuer (fingerprint or key ID) must be `key`, it must not predate the key, and any
 * critical subpacket must be one understood here. Expiry is not checked: GRUB does not either, and
 * a host's clock must not decide whether an update is genuine.
 */
export function verifyDetachedSignature(data: Uint8Array, signature: Buffer, key: OpenPgpPublicKey, source: string): void {
  const fail = (why: string) =>
    new BrlError(`${source}: ${why}`, {
      hint: 'the update\'s BOOT must be signed with the project\'s GRUB key, the one the running image carries',
      exitCode: ExitCode.verifyFailed,
      code: 'BAD_SIGNATURE',
    });
  if (signature.length === 0) throw fail('the signature file is empty');
  const { tag, bodyStart, bodyEnd } = readPacketHeader(signature, 0, fail);
  if (tag !== packetTag.signature) throw fail(`holds a tag-${tag} packet, not a signature (2)`);
  if (bodyEnd !== signature.length) throw fail(`${signature.length - bodyEnd} bytes follow the signature packet`);
  const body = signature.subarray(bodyStart, bodyEnd);
  const truncated = () => fail('the signature packet is truncated');
  if (body.length < 6) throw truncated();
  if (body[0] !== 4) throw fail(`is a version-${body[0]} signature; only version 4 is accepted`);
  if (body[1] !== signatureType.binaryDocument) throw fail(`has signature type 0x${body[1]!.toString(16).padStart(2, '0')}, not a binary document (0x00)`);
  if (body[2] !== publicKeyAlgorithmRsa) throw fail(`uses public-key algorithm ${body[2]}, not RSA (1)`);
  const hash = hashAlgorithms.get(body[3]!);
  if (hash === undefined) throw fail(`uses hash algorithm ${body[3]}; only SHA-256 (8) and SHA-512 (10) are accepted`);
  const hashedEnd = 6 + body.readUInt16BE(4);
  if (hashedEnd + 2 > body.length) throw truncated();
  const unhashedEnd = hashedEnd + 2 + body.readUInt16BE(hashedEnd);
  if (unhashedEnd + 4 > body.length) throw truncated();
  const hashed = readSubpackets(body.subarray(6, hashedEnd), fail);
  const unhashed = readSubpackets(body.subarray(hashedEnd + 2, unhashedEnd), fail);
  const leftDigestBits = body.subarray(unhashedEnd, unhashedEnd + 2);
  const mpiBytes = Math.ceil(body.readUInt16BE(unhashedEnd + 2) / 8);
  if (unhashedEnd + 4 + mpiBytes !== body.length) throw fail('the RSA value does not fill the signature packet exactly');

  const unknownCritical = hashed.find((subpacket) => subpacket.critical && !understoodSubpackets.has(subpacket.type));
  if (unknownCritical !== undefined) throw fail(`carries critical subpacket type ${unknownCritical.type}, which this check does not understand`);
  // The issuer may sit in either area (GRUB reads the unhashed key ID, gpg writes both); any that is named must be this key.
  const expectedFingerprint = fingerprint(key);
  const expectedKeyId = keyId(key);
  const issuers = [...hashed, ...unhashed];
  const named = issuers.filter((subpacket) => subpacket.type === subpacketType.issuerKeyId || subpacket.type === subpacketType.issuerFingerprint);
  if (named.length === 0) throw fail('names no issuer key');
  for (const issuer of named) {
    const actual = issuer.type === subpacketType.issuerKeyId ? issuer.data : issuer.data.subarray(1);
    const expected = issuer.type === subpacketType.issuerKeyId ? expectedKeyId : expectedFingerprint;
    if (!actual.equals(expected)) {
      throw fail(`was made by key ${actual.toString('hex').toUpperCase()}, not by the trusted key ${expected.toString('hex').toUpperCase()}`);
    }
  }

  const created = hashed.find((subpacket) => subpacket.type === subpacketType.creationTime);
  if (created === undefined || created.data.length !== 4) throw fail('has no signature creation time in its hashed area');
  if (created.data.readUInt32BE(0) < key.creationTime) throw fail('is dated before the key was created');

  const hashedPart = body.subarray(0, hashedEnd);
  const trailer = Buffer.alloc(6);
  trailer.writeUInt16BE(0x04ff, 0);
  trailer.writeUInt32BE(hashedPart.length, 2);
  const digest = createHash(hash.name).update(data).update(hashedPart).update(trailer).digest();
  if (!digest.subarray(0, 2).equals(leftDigestBits)) throw fail('does not match the data: the signed digest begins differently');
  const modulusBytes = Math.ceil((key.publicKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  const value = body.subarray(unhashedEnd + 4);
  if (value.length > modulusBytes) throw fail(`the RSA value is longer than the key's ${modulusBytes * 8}-bit modulus`);
  let recovered: Buffer;
  try {
    recovered = publicDecrypt({ key: key.publicKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([Buffer.alloc(modulusBytes - value.length), value]));
  } catch {
    throw fail('the RSA signature does not verify with the trusted key');
  }
  if (!recovered.equals(Buffer.concat([hash.digestInfo, digest]))) throw fail('the RSA signature does not verify with the trusted key');
}
