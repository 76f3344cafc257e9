// Loads a repository the way a TUF client does: root chain, timestamp, snapshot, targets, each checked.
import { BrlError, ExitCode } from '../core/errors.ts';
import type { Envelope, SignedCommon } from '../tuf/metadata.ts';
import { parseRoot, type RootMetadata } from '../tuf/root.ts';
import { parseSnapshot, parseTimestamp, type SnapshotMetadata, type TimestampMetadata } from '../tuf/snapshot.ts';
import { parseTargets, type TargetsMetadata } from '../tuf/targets.ts';
import { requireMetaMatch, requireThreshold, requireUnexpired, requireVersion, verifyRootUpdate } from '../tuf/verify.ts';
import { metadataFileName } from './layout.ts';
import type { RepoReader } from './reader.ts';

/**
 * How much to trust: expiry can be ignored (maintenance); targets, snapshot and timestamp
 * signatures only for one's own unsigned staging output. Root updates are always verified.
 */
export interface LoadOptions {
  trustedRoot: RootMetadata;
  now: number;
  enforceExpiry: boolean;
  verifySignatures: boolean;
}

export interface LoadedFile<Metadata> {
  name: string;
  bytes: Buffer;
  metadata: Metadata;
}

export interface LoadedRepository {
  /** Every root version found, oldest first; versions after the trusted one were verified in turn. */
  roots: LoadedFile<RootMetadata>[];
  root: RootMetadata;
  timestamp: LoadedFile<TimestampMetadata>;
  snapshot: LoadedFile<SnapshotMetadata>;
  targets: LoadedFile<TargetsMetadata>;
}

/** Undefined when the repository has no timestamp.json yet (a fresh repository). */
export async function loadRepository(reader: RepoReader, options: LoadOptions): Promise<LoadedRepository | undefined> {
  const timestampBytes = await reader.readMetadata('timestamp.json');
  if (timestampBytes === undefined) return undefined;
  const roots = await loadRootChain(reader, options);
  const root = roots.at(-1)!.metadata;
  const check = (envelope: Envelope<SignedCommon>, role: 'timestamp' | 'snapshot' | 'targets', location: string) => {
    if (options.verifySignatures) requireThreshold(envelope, role, root.signed, location);
    if (options.enforceExpiry) requireUnexpired(envelope.signed, options.now, location);
  };

  const timestampLocation = reader.metadataLocation('timestamp.json');
  const timestamp = parseTimestamp(timestampBytes, timestampLocation);
  check(timestamp, 'timestamp', timestampLocation);

  const snapshotMeta = timestamp.signed.meta['snapshot.json'];
  const snapshotName = metadataFileName('snapshot', snapshotMeta.version, root.signed.consistent_snapshot);
  const snapshotBytes = await readRequired(reader, snapshotName, 'timestamp.json');
  const snapshotLocation = reader.metadataLocation(snapshotName);
  requireMetaMatch(snapshotBytes, snapshotMeta, snapshotLocation);
  const snapshot = parseSnapshot(snapshotBytes, snapshotLocation);
  requireVersion(snapshot.signed.version, snapshotMeta.version, snapshotLocation, 'timestamp.json');
  check(snapshot, 'snapshot', snapshotLocation);

  const targetsMeta = snapshot.signed.meta['targets.json']!;
  const targetsName = metadataFileName('targets', targetsMeta.version, root.signed.consistent_snapshot);
  const targetsBytes = await readRequired(reader, targetsName, snapshotName);
  const targetsLocation = reader.metadataLocation(targetsName);
  requireMetaMatch(targetsBytes, targetsMeta, targetsLocation);
  const targets = parseTargets(targetsBytes, targetsLocation);
  requireVersion(targets.signed.version, targetsMeta.version, targetsLocation, snapshotName);
  check(targets, 'targets', targetsLocation);

  return {
    roots,
    root,
    timestamp: { name: 'timestamp.json', bytes: timestampBytes, metadata: timestamp },
    snapshot: { name: snapshotName, bytes: snapshotBytes, metadata: snapshot },
    targets: { name: targetsName, bytes: targetsBytes, metadata: targets },
  };
}

/**
 * Older roots are collected so they stay published; newer ones must each be signed by a threshold
 * of the previous root and of themselves. The newest root must not be expired (when enforced).
 */
async function loadRootChain(reader: RepoReader, options: LoadOptions): Promise<LoadedFile<RootMetadata>[]> {
  const trusted = options.trustedRoot;
  const roots: LoadedFile<RootMetadata>[] = [];
  for (let version = 1; version < trusted.signed.version; version += 1) {
    const name = `${version}.root.json`;
    const bytes = await reader.readMetadata(name);
    if (bytes !== undefined) roots.push({ name, bytes, metadata: parseRoot(bytes, reader.metadataLocation(name)) });
  }
  const trustedName = `${trusted.signed.version}.root.json`;
  roots.push({ name: trustedName, bytes: (await reader.readMetadata(trustedName)) ?? Buffer.alloc(0), metadata: trusted });
  let current = trusted;
  for (;;) {
    const name = `${current.signed.version + 1}.root.json`;
    const bytes = await reader.readMetadata(name);
    if (bytes === undefined) break;
    const location = reader.metadataLocation(name);
    const next = parseRoot(bytes, location);
    verifyRootUpdate(current, next, location);
    roots.push({ name, bytes, metadata: next });
    current = next;
  }
  if (options.enforceExpiry) requireUnexpired(current.signed, options.now, reader.metadataLocation(`${current.signed.version}.root.json`));
  return roots;
}

async function readRequired(reader: RepoReader, name: string, referencedBy: string): Promise<Buffer> {
  const bytes = await reader.readMetadata(name);
  if (bytes === undefined) {
    throw new BrlError(`${reader.metadataLocation(name)} is missing, but ${referencedBy} refers to it`, {
      hint: 'the repository is incomplete: publish every metadata file, or rebuild it',
      exitCode: ExitCode.verifyFailed,
      code: 'METADATA_MISSING',
    });
  }
  return bytes;
}
