// targets.json: the name, length and hashes of every file a client may download.
import type { JsonObject } from './canonical-json.ts';
import { expectCount, expectHashes, expectObject, metadataError, parseEnvelope, specVersion, type Envelope, type SignedCommon } from './metadata.ts';

export interface TargetFile extends JsonObject {
  length: number;
  hashes: { sha256: string; [algorithm: string]: string };
}

export interface TargetsSigned extends SignedCommon {
  _type: 'targets';
  targets: Record<string, TargetFile>;
}

export type TargetsMetadata = Envelope<TargetsSigned>;

export function newTargets(version: number, expires: string): TargetsMetadata {
  return { signatures: [], signed: { _type: 'targets', spec_version: specVersion, version, expires, targets: {} } };
}

/**
 * Target names are relative paths of printable ASCII without `..` segments, so they are safe as
 * file names and sort the same in every canonical JSON implementation.
 */
export function targetNameProblem(name: string): string | undefined {
  if (!/^[\x21-\x7e]+$/.test(name)) return 'must be printable ASCII without spaces';
  if (name.startsWith('/') || name.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) {
    return 'must be a relative path without empty, "." or ".." segments';
  }
  return undefined;
}

/** The path a consistent-snapshot client fetches: `<dir>/<sha256>.<base name>`. */
export function consistentTargetPath(name: string, sha256: string): string {
  const slash = name.lastIndexOf('/');
  return slash < 0 ? `${sha256}.${name}` : `${name.slice(0, slash + 1)}${sha256}.${name.slice(slash + 1)}`;
}

export function parseTargets(data: Uint8Array | string, source: string): TargetsMetadata {
  return parseEnvelope<TargetsSigned>(data, 'targets', source, checkTargets);
}

function checkTargets(signed: JsonObject, source: string): void {
  const targets = expectObject(signed.targets, source, 'signed.targets');
  for (const [name, value] of Object.entries(targets)) {
    const problem = targetNameProblem(name);
    if (problem) throw metadataError(source, `target name ${JSON.stringify(name)} ${problem}`);
    const target = expectObject(value, source, `signed.targets.${name}`);
    expectCount(target, 'length', source, `signed.targets.${name}`);
    expectHashes(target, source, `signed.targets.${name}`);
    if (target.custom !== undefined) expectObject(target.custom, source, `signed.targets.${name}.custom`);
  }
  if (signed.delegations !== undefined) throw metadataError(source, 'delegations are not supported');
}
