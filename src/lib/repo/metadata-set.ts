// The targets → snapshot → timestamp chain of one repository: pinning, signing and writing it in order.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { writeFileAtomic } from '../core/fs.ts';
import type { Signer } from '../signing/signer.ts';
import { serializeEnvelope, type Envelope, type RoleName, type SignedCommon } from '../tuf/metadata.ts';
import type { RootMetadata } from '../tuf/root.ts';
import { signEnvelope } from '../tuf/sign.ts';
import type { MetaFile, SnapshotMetadata, TimestampMetadata } from '../tuf/snapshot.ts';
import type { TargetsMetadata } from '../tuf/targets.ts';
import { sha256Hex, signatureReport } from '../tuf/verify.ts';
import { formatExpires } from '../tuf/time.ts';
import { metadataFileName } from './layout.ts';
import type { ExpirationPolicy } from './policy.ts';

export interface MetadataSet {
  targets: TargetsMetadata;
  snapshot: SnapshotMetadata;
  timestamp: TimestampMetadata;
}

export type SignedRole = 'targets' | 'snapshot' | 'timestamp';
export const signedRoles: readonly SignedRole[] = ['targets', 'snapshot', 'timestamp'];

/** Versions are unix seconds, like pubsys, but always above the previous one. */
export function nextVersion(now: number, previous: number | undefined): number {
  return Math.max(now, (previous ?? 0) + 1);
}

export function applyVersionsAndExpirations(set: MetadataSet, now: number, start: number, policy: ExpirationPolicy, previous?: MetadataSet): void {
  set.targets.signed.version = nextVersion(now, previous?.targets.signed.version);
  set.snapshot.signed.version = nextVersion(now, previous?.snapshot.signed.version);
  set.timestamp.signed.version = nextVersion(now, previous?.timestamp.signed.version);
  set.targets.signed.expires = formatExpires(start + policy.targets);
  set.snapshot.signed.expires = formatExpires(start + policy.snapshot);
  set.timestamp.signed.expires = formatExpires(start + policy.timestamp);
}

export function metaFileFor(envelope: Envelope<SignedCommon>): MetaFile {
  const bytes = serializeEnvelope(envelope);
  return { version: envelope.signed.version, length: bytes.length, hashes: { sha256: sha256Hex(bytes) } };
}

/**
 * Re-pins snapshot on targets and timestamp on snapshot. A document whose content changes loses
 * its signatures (they no longer cover it).
 */
export function pinChain(set: MetadataSet): void {
  const targetsMeta = metaFileFor(set.targets);
  if (JSON.stringify(set.snapshot.signed.meta['targets.json']) !== JSON.stringify(targetsMeta)) {
    set.snapshot = { signatures: [], signed: { ...set.snapshot.signed, meta: { ...set.snapshot.signed.meta, 'targets.json': targetsMeta } } };
  }
  const snapshotMeta = metaFileFor(set.snapshot);
  if (JSON.stringify(set.timestamp.signed.meta['snapshot.json']) !== JSON.stringify(snapshotMeta)) {
    set.timestamp = { signatures: [], signed: { ...set.timestamp.signed, meta: { 'snapshot.json': snapshotMeta } } };
  }
}

/**
 * For each role, the given signers that root authorizes for it. Refuses a signer that root
 * authorizes for no role, and a role whose threshold the signers cannot meet.
 */
export function signersByRole(root: RootMetadata, signers: readonly Signer[], roles: readonly SignedRole[] = signedRoles): Record<SignedRole, Signer[]> {
  const version = root.signed.version;
  for (const signer of signers) {
    if (!roles.some((role) => root.signed.roles[role].keyids.includes(signer.keyId))) {
      throw new BrlError(`key ${signer.keyId} (${signer.source}) is not in root v${version} for ${roles.join(', ')}`, {
        hint: 'sign with a key that root lists (brl repo root add-key), or check signing_keys in Infra.toml',
        exitCode: ExitCode.verifyFailed,
        code: 'KEY_NOT_IN_ROOT',
      });
    }
  }
  const chosen = { targets: [] as Signer[], snapshot: [] as Signer[], timestamp: [] as Signer[] };
  for (const role of roles) {
    const { keyids, threshold } = root.signed.roles[role];
    const unique = new Map(signers.filter((signer) => keyids.includes(signer.keyId)).map((signer) => [signer.keyId, signer]));
    chosen[role] = [...unique.values()];
    if (unique.size < threshold) {
      throw new BrlError(`${unique.size} of the given keys sign ${role}, but root v${version} requires ${threshold}`, {
        hint: `pass ${threshold} of the ${role} keys listed in root (--key), or lower the threshold in a new root`,
        exitCode: ExitCode.verifyFailed,
        code: 'THRESHOLD_NOT_MET',
      });
    }
  }
  return chosen;
}

/** Signs targets, then re-pins and signs snapshot, then timestamp. */
export async function signChain(set: MetadataSet, signers: Record<SignedRole, Signer[]>, root: RootMetadata): Promise<void> {
  set.targets = await signEnvelope(dropInvalid(set.targets, 'targets', root), signers.targets);
  pinChain(set);
  set.snapshot = await signEnvelope(dropInvalid(set.snapshot, 'snapshot', root), signers.snapshot);
  pinChain(set);
  set.timestamp = await signEnvelope(dropInvalid(set.timestamp, 'timestamp', root), signers.timestamp);
}

function dropInvalid<T extends Envelope<SignedCommon>>(envelope: T, role: RoleName, root: RootMetadata): T {
  const report = signatureReport(envelope, role, root.signed);
  return { ...envelope, signatures: envelope.signatures.filter((signature) => report.validKeyIds.includes(signature.keyid)) };
}

/**
 * Writes every root version (an existing file must hold the same bytes), then targets and
 * snapshot metadata, and timestamp.json last, so a reader never sees a timestamp pointing at
 * files that are not there yet.
 */
export async function writeMetadataSet(metadataDir: string, roots: readonly { version: number; bytes: Buffer }[], set: MetadataSet, consistentSnapshot: boolean): Promise<string[]> {
  const written: string[] = [];
  for (const { version, bytes } of roots) {
    const path = join(metadataDir, `${version}.root.json`);
    if (existsSync(path)) {
      if (!(await readFile(path)).equals(bytes)) {
        throw new BrlError(`${path} differs from root version ${version} being published`, {
          hint: 'a published root version can never change; publish the change as a new root version',
          exitCode: ExitCode.conflict,
          code: 'ROOT_CONFLICT',
        });
      }
      continue;
    }
    await writeFileAtomic(path, bytes);
    written.push(path);
  }
  for (const role of signedRoles) {
    const envelope = set[role];
    const path = join(metadataDir, metadataFileName(role, envelope.signed.version, consistentSnapshot));
    await writeFileAtomic(path, serializeEnvelope(envelope));
    written.push(path);
  }
  return written;
}
