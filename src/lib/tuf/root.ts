// root.json: which keys may sign each role, and how many signatures each role needs.
import type { JsonObject } from './canonical-json.ts';
import { keyIdMatches, keyIdOf, unsupportedKeyReason, type KeyJson } from './key.ts';
import {
  expectCount,
  expectHex,
  expectObject,
  metadataError,
  parseEnvelope,
  roleNames,
  specVersion,
  type Envelope,
  type RoleName,
  type SignedCommon,
} from './metadata.ts';

export interface RoleKeys extends JsonObject {
  keyids: string[];
  threshold: number;
}

export interface RootSigned extends SignedCommon {
  _type: 'root';
  consistent_snapshot: boolean;
  keys: Record<string, KeyJson>;
  roles: Record<RoleName, RoleKeys>;
}

export type RootMetadata = Envelope<RootSigned>;

/** tuftool's placeholder threshold: high enough that nobody ships a root without choosing one. */
export const unsetThreshold = 1507;

/** A fresh root as `tuftool root init` makes it: no keys, every threshold unset, expiring now. */
export function newRoot(expires: string): RootMetadata {
  const role = (): RoleKeys => ({ keyids: [], threshold: unsetThreshold });
  return {
    signatures: [],
    signed: {
      _type: 'root',
      spec_version: specVersion,
      consistent_snapshot: true,
      version: 1,
      expires,
      keys: {},
      roles: { root: role(), snapshot: role(), targets: role(), timestamp: role() },
    },
  };
}

export function parseRoot(data: Uint8Array | string, source: string): RootMetadata {
  return parseEnvelope<RootSigned>(data, 'root', source, checkRoot);
}

function checkRoot(signed: JsonObject, source: string): void {
  if (typeof signed.consistent_snapshot !== 'boolean') throw metadataError(source, 'signed.consistent_snapshot must be true or false');
  const keys = expectObject(signed.keys, source, 'signed.keys');
  for (const [keyId, value] of Object.entries(keys)) {
    const key = expectObject(value, source, `signed.keys.${keyId}`);
    const keyval = expectObject(key.keyval, source, `signed.keys.${keyId}.keyval`);
    if (typeof key.keytype !== 'string' || typeof key.scheme !== 'string' || typeof keyval.public !== 'string') {
      throw metadataError(source, `signed.keys.${keyId} needs keytype, scheme and keyval.public strings`);
    }
    if (!keyIdMatches(keyId, key as KeyJson)) {
      throw metadataError(source, `key ID ${keyId} does not match its key (sha256 of its canonical JSON is ${keyIdOf(key as KeyJson)})`);
    }
    const reason = unsupportedKeyReason(key as KeyJson);
    if (reason) throw metadataError(source, `signed.keys.${keyId}: ${reason}`);
  }
  const roles = expectObject(signed.roles, source, 'signed.roles');
  for (const name of roleNames) {
    const role = expectObject(roles[name], source, `signed.roles.${name}`);
    expectCount(role, 'threshold', source, `signed.roles.${name}`, 1);
    if (!Array.isArray(role.keyids)) throw metadataError(source, `signed.roles.${name}.keyids must be an array`);
    role.keyids.forEach((_, index) => expectHex(role.keyids as unknown as JsonObject, String(index), source, `signed.roles.${name}.keyids`));
    for (const keyId of role.keyids as string[]) {
      if (!(keyId in keys)) throw metadataError(source, `signed.roles.${name} lists key ${keyId}, which is not in signed.keys`);
    }
  }
}
