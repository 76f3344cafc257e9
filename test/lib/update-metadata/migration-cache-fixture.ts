// A signed migration cache in a host root, as updog leaves it: baked root, cached metadata chain, targets.
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PrivateKeySigner } from '../../../src/lib/signing/pem-signer.ts';
import { serializeEnvelope, type Envelope, type SignedCommon } from '../../../src/lib/tuf/metadata.ts';
import { newRoot, type RootMetadata } from '../../../src/lib/tuf/root.ts';
import { signEnvelope } from '../../../src/lib/tuf/sign.ts';
import { newSnapshot, newTimestamp } from '../../../src/lib/tuf/snapshot.ts';
import { newTargets } from '../../../src/lib/tuf/targets.ts';
import { formatExpires, nowSeconds } from '../../../src/lib/tuf/time.ts';
import { migrationCachePaths, StagedMigrationCache, type MigrationCachePaths } from '../../../src/lib/update-metadata/migration-cache.ts';

export interface CacheOptions {
  /** Also rotate the root once (v1 → v2, new key) and sign the top-level roles with the new key. */
  rotateRoot?: boolean;
  /** Seconds from now until the timestamp expires (negative: already expired). */
  timestampExpiresIn?: number;
  /** Sign timestamp with a key the root does not list. */
  foreignTimestampKey?: boolean;
}

export interface WrittenCache {
  paths: MigrationCachePaths;
  bakedRoot: Buffer;
  /** Cached file path of each target. */
  targetFiles: Record<string, string>;
}

function newSigner(): PrivateKeySigner {
  return new PrivateKeySigner(generateKeyPairSync('ed25519').privateKey, 'test');
}

async function signedRoot(version: number, signer: PrivateKeySigner, by: PrivateKeySigner[]): Promise<RootMetadata> {
  let root = newRoot(formatExpires(nowSeconds() + 86_400 * 30));
  root.signed.version = version;
  root.signed.keys[signer.keyId] = signer.publicKey;
  for (const role of ['root', 'snapshot', 'targets', 'timestamp'] as const) root.signed.roles[role] = { keyids: [signer.keyId], threshold: 1 };
  root = await signEnvelope(root, by);
  return root;
}

/** Writes `<root>/usr/share/updog/root.json` and a committed cache holding `targets` (manifest.json included by the caller). */
export async function writeSignedMigrationCache(hostRoot: string, targets: Record<string, Buffer>, options: CacheOptions = {}): Promise<WrittenCache> {
  const first = newSigner();
  const roots = [await signedRoot(1, first, [first])];
  let signer = first;
  if (options.rotateRoot) {
    const second = newSigner();
    roots.push(await signedRoot(2, second, [first, second]));
    signer = second;
  }
  const expires = formatExpires(nowSeconds() + 86_400 * 7);
  let targetsMeta = newTargets(3, expires);
  const entries = [];
  for (const [name, bytes] of Object.entries(targets)) {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    targetsMeta.signed.targets[name] = { length: bytes.length, hashes: { sha256 } };
    entries.push({ name, sha256, bytes });
  }
  targetsMeta = await signEnvelope(targetsMeta, [signer]);
  const targetsBytes = serializeEnvelope(targetsMeta);
  const pin = (bytes: Buffer, version: number) => ({ version, length: bytes.length, hashes: { sha256: createHash('sha256').update(bytes).digest('hex') } });
  const snapshotBytes = serializeEnvelope(await signEnvelope(newSnapshot(3, expires, pin(targetsBytes, 3)), [signer]));
  const timestamp = newTimestamp(3, formatExpires(nowSeconds() + (options.timestampExpiresIn ?? 86_400)), pin(snapshotBytes, 3));
  const timestampBytes = serializeEnvelope(await signEnvelope(timestamp, [options.foreignTimestampKey ? newSigner() : signer]) as Envelope<SignedCommon>);

  const paths = migrationCachePaths(hostRoot);
  const bakedRoot = serializeEnvelope(roots[0]!);
  await mkdir(dirname(paths.trustedRoot), { recursive: true });
  await writeFile(paths.trustedRoot, bakedRoot);
  const staged = await StagedMigrationCache.create(paths, {
    roots: roots.map((root) => serializeEnvelope(root)),
    timestamp: timestampBytes,
    snapshot: snapshotBytes,
    targets: targetsBytes,
  }, entries);
  await staged.commit();
  return {
    paths,
    bakedRoot,
    targetFiles: Object.fromEntries(entries.map((entry) => [entry.name, `${paths.targetsDir}/${entry.sha256}.${entry.name}`])),
  };
}
