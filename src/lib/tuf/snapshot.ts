// snapshot.json and timestamp.json: the version, length and hash of the metadata each one pins.
import type { JsonObject } from './canonical-json.ts';
import { expectCount, expectHashes, expectObject, metadataError, parseEnvelope, specVersion, type Envelope, type SignedCommon } from './metadata.ts';

export interface MetaFile extends JsonObject {
  version: number;
  length: number;
  hashes: { sha256: string; [algorithm: string]: string };
}

export interface SnapshotSigned extends SignedCommon {
  _type: 'snapshot';
  meta: Record<string, MetaFile>;
}

export interface TimestampSigned extends SignedCommon {
  _type: 'timestamp';
  meta: { 'snapshot.json': MetaFile };
}

export type SnapshotMetadata = Envelope<SnapshotSigned>;
export type TimestampMetadata = Envelope<TimestampSigned>;

export function newSnapshot(version: number, expires: string, targets: MetaFile): SnapshotMetadata {
  return { signatures: [], signed: { _type: 'snapshot', spec_version: specVersion, version, expires, meta: { 'targets.json': targets } } };
}

export function newTimestamp(version: number, expires: string, snapshot: MetaFile): TimestampMetadata {
  return { signatures: [], signed: { _type: 'timestamp', spec_version: specVersion, version, expires, meta: { 'snapshot.json': snapshot } } };
}

export function parseSnapshot(data: Uint8Array | string, source: string): SnapshotMetadata {
  return parseEnvelope<SnapshotSigned>(data, 'snapshot', source, (signed) => checkMeta(signed, source, 'targets.json'));
}

export function parseTimestamp(data: Uint8Array | string, source: string): TimestampMetadata {
  return parseEnvelope<TimestampSigned>(data, 'timestamp', source, (signed) => checkMeta(signed, source, 'snapshot.json'));
}

function checkMeta(signed: JsonObject, source: string, required: string): void {
  const meta = expectObject(signed.meta, source, 'signed.meta');
  if (meta[required] === undefined) throw metadataError(source, `signed.meta has no ${required}`);
  for (const [name, value] of Object.entries(meta)) {
    const entry = expectObject(value, source, `signed.meta.${name}`);
    expectCount(entry, 'version', source, `signed.meta.${name}`, 1);
    if (entry.length !== undefined) expectCount(entry, 'length', source, `signed.meta.${name}`);
    if (entry.hashes !== undefined) expectHashes(entry, source, `signed.meta.${name}`);
  }
}
