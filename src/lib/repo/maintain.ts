// Signing, refreshing and expiry checks on an existing repository's metadata (targets untouched).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { makeDir } from '../core/fs.ts';
import type { Signer } from '../signing/signer.ts';
import type { RoleName } from '../tuf/metadata.ts';
import { parseRoot, type RootMetadata } from '../tuf/root.ts';
import { formatExpires, parseExpires } from '../tuf/time.ts';
import { isExpired, requireThreshold } from '../tuf/verify.ts';
import type { RepoLayout } from './layout.ts';
import { loadRepository, type LoadedRepository } from './load.ts';
import { applyVersionsAndExpirations, pinChain, signChain, signersByRole, writeMetadataSet, type MetadataSet } from './metadata-set.ts';
import type { ExpirationPolicy } from './policy.ts';
import { DirectoryReader, type RepoReader } from './reader.ts';
import { publishedRoots, rootChain, type RootVersion } from './root-chain.ts';
import { readRootFile, readRootHistory, rootHistoryPath } from './root-file.ts';
import { verifyLocalRepository, type ValidateResult } from './validate.ts';

async function loadOrFail(reader: RepoReader, trustedRoot: RootMetadata, now: number, verifySignatures: boolean): Promise<LoadedRepository> {
  const repository = await loadRepository(reader, { trustedRoot, now, enforceExpiry: false, verifySignatures });
  if (!repository) {
    throw new BrlError(`${reader.metadataLocation('timestamp.json')} does not exist`, {
      hint: 'build the repository first (brl repo build), or check --variant and --arch',
      exitCode: ExitCode.notFound,
      code: 'NO_REPOSITORY',
    });
  }
  return repository;
}

function metadataSetOf(repository: LoadedRepository): MetadataSet {
  return {
    targets: structuredClone(repository.targets.metadata),
    snapshot: structuredClone(repository.snapshot.metadata),
    timestamp: structuredClone(repository.timestamp.metadata),
  };
}

export interface SignResult extends ValidateResult {
  metadataDir: string;
  signedBy: Record<'targets' | 'snapshot' | 'timestamp', string[]>;
}

/**
 * `brl repo sign`: (re)signs targets, snapshot and timestamp of a staged repository without
 * changing their content or versions, then checks the result against the trusted root.
 */
export async function signRepository(layout: RepoLayout, trust: TrustRoot, signers: readonly Signer[], now: number): Promise<SignResult> {
  const reader = new DirectoryReader(layout.metadataDir, layout.targetsDir);
  const repository = await loadOrFail(reader, trust.oldest, now, false);
  const chain = rootChain({ published: publishedRoots(repository), configured: trust.history, rootPath: trust.source, repository: layout.metadataDir });
  const root = chain.roots.at(-1) ?? repository.root;
  requireThreshold(root, 'root', root.signed, `root v${root.signed.version}`);
  const byRole = signersByRole(root, signers);
  const set = metadataSetOf(repository);
  await signChain(set, byRole, root);
  await writeMetadataSet(layout.metadataDir, chain.versions, set, root.signed.consistent_snapshot);
  // Checked as a client holding the oldest published root sees it: through every rotation.
  const result = await verifyLocalRepository(layout, chain.roots[0] ?? root, now);
  return {
    ...result,
    metadataDir: layout.metadataDir,
    signedBy: { targets: byRole.targets.map((s) => s.keyId), snapshot: byRole.snapshot.map((s) => s.keyId), timestamp: byRole.timestamp.map((s) => s.keyId) },
  };
}

/**
 * `brl repo refresh`: new versions and expirations for targets, snapshot and timestamp, re-signed;
 * metadata only. An already expired repository needs `unsafe` (pubsys `--unsafe-refresh`).
 */
export async function refreshRepository(
  reader: RepoReader,
  outputMetadataDir: string,
  trust: TrustRoot,
  signers: readonly Signer[],
  options: { now: number; policy: ExpirationPolicy; unsafe?: boolean; targetsDir?: string | undefined },
): Promise<{ metadataDir: string; versions: Record<'targets' | 'snapshot' | 'timestamp', number>; expires: Record<'targets' | 'snapshot' | 'timestamp', string> }> {
  // The current metadata verifies under the newest root already published (reached from the oldest
  // one kept); the refreshed metadata is signed with the newest root of the chain, rotations included.
  const repository = await loadOrFail(reader, trust.oldest, options.now, true);
  const expired = (['targets', 'snapshot', 'timestamp'] as const).filter((role) => isExpired(repository[role].metadata.signed, options.now));
  if (expired.length > 0 && !options.unsafe) {
    throw new BrlError(`${expired.join(', ')} metadata already expired; refusing to refresh a repository clients no longer trust`, {
      hint: 'check that the repository is the one you mean, then pass --unsafe-refresh',
      exitCode: ExitCode.verifyFailed,
      code: 'EXPIRED',
    });
  }
  const chain = rootChain({ published: publishedRoots(repository), configured: trust.history, rootPath: trust.source, repository: reader.metadataLocation('') });
  const root = chain.roots.at(-1) ?? repository.root;
  const byRole = signersByRole(root, signers);
  const previous = metadataSetOf(repository);
  const set = metadataSetOf(repository);
  for (const role of ['targets', 'snapshot', 'timestamp'] as const) set[role].signatures = [];
  applyVersionsAndExpirations(set, options.now, options.now, options.policy, previous);
  pinChain(set);
  await signChain(set, byRole, root);
  await makeDir(outputMetadataDir);
  await writeMetadataSet(outputMetadataDir, chain.versions, set, root.signed.consistent_snapshot);
  await verifyLocalRepository({ outdir: '', metadataDir: outputMetadataDir, targetsDir: options.targetsDir ?? '' }, chain.roots[0] ?? root, options.now);
  return {
    metadataDir: outputMetadataDir,
    versions: { targets: set.targets.signed.version, snapshot: set.snapshot.signed.version, timestamp: set.timestamp.signed.version },
    expires: { targets: set.targets.signed.expires, snapshot: set.snapshot.signed.expires, timestamp: set.timestamp.signed.expires },
  };
}

export interface RoleExpiry {
  role: RoleName;
  version: number;
  expires: string;
  /** True when the role expires at or before the limit. */
  expiring: boolean;
}

/** `brl repo check-expirations`: every role's expiry; throws when any expires before `limit`. */
export async function checkExpirations(reader: RepoReader, trustedRoot: RootMetadata, now: number, limit: number): Promise<{ limit: string; roles: RoleExpiry[] }> {
  const repository = await loadOrFail(reader, trustedRoot, now, true);
  const documents = { root: repository.root, targets: repository.targets.metadata, snapshot: repository.snapshot.metadata, timestamp: repository.timestamp.metadata };
  const roles = Object.entries(documents).map(([role, document]) => ({
    role: role as RoleName,
    version: document.signed.version,
    expires: document.signed.expires,
    expiring: (parseExpires(document.signed.expires) ?? 0) <= limit,
  }));
  const expiring = roles.filter((role) => role.expiring);
  if (expiring.length > 0) {
    throw new BrlError(`${expiring.map((role) => `${role.role} (expires ${role.expires})`).join(', ')} expire(s) before ${formatExpires(limit)}`, {
      hint: expiring.some((role) => role.role === 'root') ? 'publish a new root version, then refresh the repository' : 'refresh the repository (brl repo refresh) and publish it',
      exitCode: ExitCode.verifyFailed,
      code: 'EXPIRING',
    });
  }
  return { limit: formatExpires(limit), roles };
}

/** The root that signs, where it came from, and its versions to publish (readRootHistory). */
export interface TrustRoot {
  root: RootMetadata;
  /** The oldest version kept: a repository is loaded from it, through the rotations it publishes. */
  oldest: RootMetadata;
  source: string;
  history: RootVersion[];
}

/** The configured root file: its newest version signs, and it with its kept versions is published. */
export async function configuredTrustRoot(path: string): Promise<TrustRoot> {
  const history = await readRootHistory(path);
  const root = await readRootFile(path);
  const first = history[0];
  const oldest = first === undefined || first.version === root.signed.version ? root : parseRoot(first.bytes, rootHistoryPath(path, first.version));
  return { root, oldest, source: path, history };
}

/**
 * The root a staged repository is checked against when signing: the given or configured root,
 * else (with a note to the user) the repository's own 1.root.json.
 */
export async function signingTrustRoot(metadataDir: string, configuredPath: string): Promise<TrustRoot> {
  if (existsSync(configuredPath)) return configuredTrustRoot(configuredPath);
  const own = join(metadataDir, '1.root.json');
  const root = await readRootFile(own);
  return { root, oldest: root, source: own, history: [] };
}
