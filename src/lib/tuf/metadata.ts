// The signed envelope shared by every role: parsing with clear errors, canonical serialization.
import { BrlError, ExitCode } from '../core/errors.ts';
import { canonicalBytes, sortedJson, type JsonObject, type JsonValue } from './canonical-json.ts';
import { parseExpires } from './time.ts';

export const roleNames = ['root', 'targets', 'snapshot', 'timestamp'] as const;
export type RoleName = (typeof roleNames)[number];

export const specVersion = '1.0.0';

export interface SignatureEntry extends JsonObject {
  keyid: string;
  sig: string;
}

/** Fields every role's `signed` carries; unknown fields are kept so signatures still cover them. */
export interface SignedCommon extends JsonObject {
  _type: RoleName;
  spec_version: string;
  version: number;
  expires: string;
}

export interface Envelope<Signed extends SignedCommon> {
  signatures: SignatureEntry[];
  signed: Signed;
}

/** The bytes a signature covers. */
export function signedBytes(envelope: Envelope<SignedCommon>): Buffer {
  return canonicalBytes(envelope.signed);
}

/**
 * A metadata file's bytes: the whole document with sorted keys and no whitespace, so lengths and
 * hashes are reproducible (canonical JSON, except that control characters in PEM keys are escaped).
 */
export function serializeEnvelope(envelope: Envelope<SignedCommon>): Buffer {
  return Buffer.from(sortedJson({ signatures: envelope.signatures, signed: envelope.signed }), 'utf8');
}

export function metadataError(source: string, message: string): BrlError {
  return new BrlError(`${source}: ${message}`, {
    hint: 'the file is not valid TUF metadata; rebuild it or fetch it again',
    exitCode: ExitCode.badInput,
    code: 'BAD_METADATA',
  });
}

/** Parses and checks the envelope and common fields; role checks are the caller's `check`. */
export function parseEnvelope<Signed extends SignedCommon>(
  data: Uint8Array | string,
  role: RoleName,
  source: string,
  check: (signed: JsonObject, source: string) => void,
): Envelope<Signed> {
  let document: unknown;
  try {
    document = JSON.parse(typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
  } catch (error) {
    throw metadataError(source, `not JSON (${(error as Error).message})`);
  }
  const top = expectObject(document, source, 'document');
  const signatures = top.signatures;
  if (!Array.isArray(signatures)) throw metadataError(source, 'signatures must be an array');
  for (const [index, entry] of signatures.entries()) {
    const signature = expectObject(entry, source, `signatures[${index}]`);
    expectHex(signature, 'keyid', source, `signatures[${index}]`);
    expectHex(signature, 'sig', source, `signatures[${index}]`);
  }
  const signed = expectObject(top.signed, source, 'signed');
  if (signed._type !== role) throw metadataError(source, `signed._type is ${JSON.stringify(signed._type)}, expected "${role}"`);
  const spec = expectString(signed, 'spec_version', source, 'signed');
  if (!/^1\.\d+(\.\d+)?$/.test(spec)) throw metadataError(source, `unsupported spec_version ${spec} (need 1.x)`);
  expectCount(signed, 'version', source, 'signed', 1);
  const expires = expectString(signed, 'expires', source, 'signed');
  if (parseExpires(expires) === undefined) throw metadataError(source, `signed.expires ${JSON.stringify(expires)} is not YYYY-MM-DDTHH:MM:SSZ`);
  check(signed, source);
  return { signatures: signatures as SignatureEntry[], signed: signed as Signed };
}

export function expectObject(value: unknown, source: string, where: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw metadataError(source, `${where} must be an object`);
  return value as JsonObject;
}

export function expectString(object: JsonObject, key: string, source: string, where: string): string {
  const value = object[key];
  if (typeof value !== 'string') throw metadataError(source, `${where}.${key} must be a string`);
  return value;
}

export function expectHex(object: JsonObject, key: string, source: string, where: string): string {
  const value = expectString(object, key, source, where);
  if (!/^[0-9a-f]*$/.test(value)) throw metadataError(source, `${where}.${key} must be lowercase hex`);
  return value;
}

export function expectCount(object: JsonObject, key: string, source: string, where: string, minimum = 0): number {
  const value: JsonValue | undefined = object[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) {
    throw metadataError(source, `${where}.${key} must be an integer ≥ ${minimum}`);
  }
  return value;
}

/** `hashes`: algorithm → lowercase hex, with sha256 required (clients look targets up by it). */
export function expectHashes(object: JsonObject, source: string, where: string): Record<string, string> {
  const hashes = expectObject(object.hashes, source, `${where}.hashes`);
  for (const algorithm of Object.keys(hashes)) expectHex(hashes, algorithm, source, `${where}.hashes`);
  if (typeof hashes.sha256 !== 'string') throw metadataError(source, `${where}.hashes has no sha256`);
  return hashes as Record<string, string>;
}
