// The root versions a repository publishes. A TUF client that trusts root N fetches N+1.root.json,
// N+2, … until one is missing (TUF 5.3), so after a rotation every version from the oldest one
// clients may hold up to the one that signs must be in the repository, each signed by a threshold of
// the version before. `brl repo build`, `sign` and `refresh` all publish this chain.
import { basename, dirname } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { parseRoot, type RootMetadata } from '../tuf/root.ts';
import { verifyRootUpdate } from '../tuf/verify.ts';
import type { LoadedRepository } from './load.ts';
import { rootHistoryPath } from './root-file.ts';

export interface RootVersion {
  version: number;
  bytes: Buffer;
}

export interface RootChainSources {
  /** Versions already in the repository: published, so they never change. */
  published: readonly RootVersion[];
  /** The root file's versions (readRootHistory): earlier ones kept beside it as `<N>.<name>`. */
  configured: readonly RootVersion[];
  /** The root file, to say where a missing version was expected. */
  rootPath: string;
  /** The repository's metadata directory or URL, for messages. */
  repository: string;
}

/**
 * Every root version to publish, oldest first: the published ones and the root file's history,
 * checked the way a client checks them. Throws when a version differs from the published one, when
 * one is missing from both places (a client holding the one before could not follow), or when a
 * rotation is not signed by a threshold of the previous root.
 */
export function rootChain(sources: RootChainSources): { versions: RootVersion[]; roots: RootMetadata[] } {
  const byVersion = new Map<number, RootVersion>();
  for (const entry of sources.published) byVersion.set(entry.version, entry);
  for (const entry of sources.configured) {
    const published = byVersion.get(entry.version);
    if (published === undefined) byVersion.set(entry.version, entry);
    else if (!published.bytes.equals(entry.bytes)) {
      throw new BrlError(`root v${entry.version} in ${sources.rootPath}'s history differs from the ${entry.version}.root.json published in ${sources.repository}`, {
        hint: 'a published root version can never change; publish the change as a new root version (brl repo root edits start one)',
        exitCode: ExitCode.conflict,
        code: 'ROOT_CONFLICT',
      });
    }
  }
  const versions = [...byVersion.values()].sort((a, b) => a.version - b.version);
  const roots: RootMetadata[] = [];
  for (const entry of versions) {
    const location = `root v${entry.version}`;
    const root = parseRoot(entry.bytes, location);
    if (root.signed.version !== entry.version) {
      throw new BrlError(`${entry.version}.root.json holds root version ${root.signed.version}`, { exitCode: ExitCode.verifyFailed, code: 'ROOT_VERSION_MISMATCH', hint: `check ${sources.rootPath} and the files kept beside it` });
    }
    const previous = roots.at(-1);
    if (previous !== undefined) {
      if (root.signed.version !== previous.signed.version + 1) {
        const missing = previous.signed.version + 1;
        throw new BrlError(
          `root v${missing} is neither published in ${sources.repository} nor kept beside ${sources.rootPath} as ${basename(rootHistoryPath(sources.rootPath, missing))}: a client that trusts v${previous.signed.version} could not reach v${root.signed.version}`,
          { hint: `put the signed v${missing} in ${dirname(sources.rootPath)} as ${basename(rootHistoryPath(sources.rootPath, missing))} (brl repo root edits keep each signed version there)`, exitCode: ExitCode.notFound, code: 'ROOT_CHAIN_GAP' },
        );
      }
      verifyRootUpdate(previous, root, location);
    }
    roots.push(root);
  }
  return { versions, roots };
}

/** The root versions a loaded repository already publishes (a trusted root it does not hold has no bytes). */
export function publishedRoots(repository: LoadedRepository | undefined): RootVersion[] {
  return (repository?.roots ?? []).filter((file) => file.bytes.length > 0).map((file) => ({ version: file.metadata.signed.version, bytes: file.bytes }));
}
