// Trust checks over parsed metadata and bytes, without I/O: thresholds, root rotation, expiry, pins.
import { createHash } from 'node:crypto';
import { BrlError, ExitCode } from '../core/errors.ts';
import { verifyWithKey } from './key.ts';
import { signedBytes, type Envelope, type RoleName, type SignedCommon } from './metadata.ts';
import type { RootMetadata, RootSigned } from './root.ts';
import type { MetaFile } from './snapshot.ts';
import type { TargetFile } from './targets.ts';
import { formatExpires, parseExpires } from './time.ts';

export function verificationError(message: string, code: string, hint?: string): BrlError {
  return new BrlError(message, { exitCode: ExitCode.verifyFailed, code, ...(hint === undefined ? {} : { hint }) });
}

/** Who signed a document, as the root sees it. */
export interface SignatureReport {
  role: RoleName;
  threshold: number;
  /** Distinct authorized keys with a valid signature. */
  validKeyIds: string[];
  /** Signatures by keys the root does not authorize for this role. */
  unauthorizedKeyIds: string[];
  /** Signatures by authorized keys that do not verify. */
  invalidKeyIds: string[];
}

export function signatureReport(envelope: Envelope<SignedCommon>, role: RoleName, root: RootSigned): SignatureReport {
  const roleKeys = root.roles[role];
  const bytes = signedBytes(envelope);
  const report: SignatureReport = { role, threshold: roleKeys.threshold, validKeyIds: [], unauthorizedKeyIds: [], invalidKeyIds: [] };
  for (const { keyid, sig } of envelope.signatures) {
    const key = root.keys[keyid];
    if (!key || !roleKeys.keyids.includes(keyid)) {
      report.unauthorizedKeyIds.push(keyid);
    } else if (report.validKeyIds.includes(keyid)) {
      continue;
    } else if (verifyWithKey(key, bytes, sig)) {
      report.validKeyIds.push(keyid);
    } else {
      report.invalidKeyIds.push(keyid);
    }
  }
  return report;
}

/** Throws unless a threshold of the root's keys for `role` signed `envelope`. */
export function requireThreshold(envelope: Envelope<SignedCommon>, role: RoleName, root: RootSigned, source: string, rootLabel = `root v${root.version}`): SignatureReport {
  const report = signatureReport(envelope, role, root);
  if (report.validKeyIds.length >= report.threshold) return report;
  const details = [`${report.validKeyIds.length} valid signature(s) of ${report.threshold} required by ${rootLabel}`];
  if (report.unauthorizedKeyIds.length > 0) details.push(`signed by key(s) not in ${rootLabel} for ${role}: ${report.unauthorizedKeyIds.map(short).join(', ')}`);
  if (report.invalidKeyIds.length > 0) details.push(`signature(s) that do not verify: ${report.invalidKeyIds.map(short).join(', ')}`);
  throw verificationError(`${source}: ${details.join('; ')}`, 'SIGNATURE_THRESHOLD', `sign ${source} with ${report.threshold} of the ${role} keys listed in ${rootLabel} (brl repo sign)`);
}

/** A root update must be the next version and signed by a threshold of both the old and the new root keys. */
export function verifyRootUpdate(trusted: RootMetadata, next: RootMetadata, source: string): void {
  const expected = trusted.signed.version + 1;
  if (next.signed.version !== expected) {
    throw verificationError(`${source}: root version is ${next.signed.version}, expected ${expected}`, 'ROLLBACK');
  }
  try {
    requireThreshold(next, 'root', trusted.signed, source, `the previous root (v${trusted.signed.version})`);
  } catch (error) {
    if (!(error instanceof BrlError)) throw error;
    throw verificationError(`root rotation to v${expected} is not signed by a threshold of the old root's keys: ${error.message}`, 'ROOT_ROTATION',
      'a new root must be signed by the old root keys and its own (brl repo root sign --key OLD --key NEW)');
  }
  requireThreshold(next, 'root', next.signed, source, `root v${expected} itself`);
}

export function isExpired(signed: SignedCommon, now: number): boolean {
  return (parseExpires(signed.expires) ?? 0) <= now;
}

export function requireUnexpired(signed: SignedCommon, now: number, source: string): void {
  if (isExpired(signed, now)) {
    throw verificationError(`${source}: ${signed._type} metadata expired at ${signed.expires} (now ${formatExpires(now)})`, 'EXPIRED',
      signed._type === 'root' ? 'publish a new root version (brl repo root expire, sign)' : 'refresh the repository (brl repo refresh) and publish it');
  }
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Checks a metadata file's bytes against what the role above it pins (length and hashes when given). */
export function requireMetaMatch(data: Uint8Array, expected: MetaFile, source: string): void {
  if (expected.length !== undefined && expected.length !== data.length) {
    throw verificationError(`${source}: length ${data.length} differs from the ${expected.length} bytes pinned for it`, 'LENGTH_MISMATCH');
  }
  for (const [algorithm, digest] of Object.entries(expected.hashes ?? {})) {
    if (algorithm !== 'sha256' && algorithm !== 'sha512') continue;
    const actual = createHash(algorithm).update(data).digest('hex');
    if (actual !== digest) throw verificationError(`${source}: ${algorithm} ${actual} differs from the pinned ${digest}`, 'HASH_MISMATCH');
  }
}

export function requireVersion(actual: number, expected: number, source: string, pinnedBy: string): void {
  if (actual !== expected) {
    throw verificationError(`${source}: version ${actual} differs from version ${expected} pinned by ${pinnedBy}`, 'VERSION_MISMATCH',
      'rebuild or re-sign the repository so snapshot, targets and timestamp agree (brl repo sign)');
  }
}

/** Checks a target's measured length and digest against its targets.json entry. */
export function requireTargetMatch(name: string, length: number, sha256: string, expected: TargetFile): void {
  if (length !== expected.length) {
    throw verificationError(`target ${name}: length ${length} differs from the ${expected.length} bytes in targets.json`, 'TARGET_LENGTH_MISMATCH');
  }
  if (sha256 !== expected.hashes.sha256) {
    throw verificationError(`target ${name}: sha256 ${sha256} differs from ${expected.hashes.sha256} in targets.json`, 'TARGET_HASH_MISMATCH');
  }
}

function short(keyId: string): string {
  return keyId.slice(0, 16);
}
