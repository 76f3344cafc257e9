// `brl repo validate`: the whole chain of trust, pins between roles, rollbacks, and optionally every target.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { mapLimit } from '../core/concurrency.ts';
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';
import { hashStream } from '../core/hash.ts';
import type { RootMetadata } from '../tuf/root.ts';
import { consistentTargetPath } from '../tuf/targets.ts';
import { requireTargetMatch, verificationError } from '../tuf/verify.ts';
import type { RepoLayout } from './layout.ts';
import { loadRepository, type LoadedRepository } from './load.ts';
import { DirectoryReader, type RepoReader } from './reader.ts';

export interface ValidateOptions {
  reader: RepoReader;
  trustedRoot: RootMetadata;
  now: number;
  /** Download (or read) every target and check its length and sha256. */
  checkTargets?: boolean;
  /** Parallel target checks (pubsys uses 16). */
  jobs?: number;
  onTarget?: (name: string) => void;
}

export interface ValidateResult {
  location: string;
  rootVersion: number;
  versions: { targets: number; snapshot: number; timestamp: number };
  expires: { root: string; targets: string; snapshot: string; timestamp: string };
  targetCount: number;
  targetsChecked: number;
}

export async function validateRepository(options: ValidateOptions): Promise<ValidateResult> {
  return (await validateAndLoad(options)).result;
}

async function validateAndLoad(options: ValidateOptions): Promise<{ result: ValidateResult; repository: LoadedRepository }> {
  const { reader } = options;
  const repository = await loadRepository(reader, { trustedRoot: options.trustedRoot, now: options.now, enforceExpiry: true, verifySignatures: true });
  if (!repository) {
    throw new BrlError(`${reader.metadataLocation('timestamp.json')} does not exist`, {
      hint: 'build the repository first (brl repo build), or check --variant, --arch and the location',
      exitCode: ExitCode.notFound,
      code: 'NO_REPOSITORY',
    });
  }
  if (reader instanceof DirectoryReader) await refuseRollback(reader.metadataDir, repository);
  const entries = Object.entries(repository.targets.metadata.signed.targets);
  let checked = 0;
  if (options.checkTargets) {
    await mapLimit(entries, Math.max(1, options.jobs ?? 16), async ([name, target]) => {
      const fileName = consistentTargetPath(name, target.hashes.sha256);
      const stream = await reader.openTarget(fileName);
      if (!stream) {
        throw verificationError(`target ${name}: ${reader.targetLocation(fileName)} does not exist`, 'TARGET_MISSING', 'publish the targets directory along with the metadata');
      }
      const { hex, bytes } = await hashStream(stream, 'sha256', { stopAfterBytes: target.length });
      stream.destroy();
      requireTargetMatch(name, bytes, hex, target);
      checked += 1;
      options.onTarget?.(name);
    });
  }
  return { result: summarize(reader.metadataLocation(''), repository, entries.length, checked), repository };
}

function summarize(location: string, repository: LoadedRepository, targetCount: number, targetsChecked: number): ValidateResult {
  const { root, targets, snapshot, timestamp } = repository;
  return {
    location,
    rootVersion: root.signed.version,
    versions: { targets: targets.metadata.signed.version, snapshot: snapshot.metadata.signed.version, timestamp: timestamp.metadata.signed.version },
    expires: { root: root.signed.expires, targets: targets.metadata.signed.expires, snapshot: snapshot.metadata.signed.expires, timestamp: timestamp.metadata.signed.expires },
    targetCount,
    targetsChecked,
  };
}

/**
 * In a local repository every older version stays on disk, so a timestamp that pins an older
 * snapshot (or a snapshot an older targets) than the newest present is a rollback.
 */
async function refuseRollback(metadataDir: string, repository: LoadedRepository): Promise<void> {
  const newest = { snapshot: 0, targets: 0 };
  for (const name of await readdir(metadataDir)) {
    const match = /^(\d+)\.(snapshot|targets)\.json$/.exec(name);
    if (match) newest[match[2] as 'snapshot' | 'targets'] = Math.max(newest[match[2] as 'snapshot' | 'targets'], Number(match[1]));
  }
  const pins = [
    ['timestamp.json', 'snapshot', repository.snapshot.metadata.signed.version],
    [repository.snapshot.name, 'targets', repository.targets.metadata.signed.version],
  ] as const;
  for (const [pinnedBy, role, version] of pins) {
    if (version < newest[role]) {
      throw verificationError(`${join(metadataDir, pinnedBy)} pins ${role} version ${version}, but the newer ${newest[role]}.${role}.json exists: a version rollback (or an interrupted write)`,
        'ROLLBACK', 'rebuild or refresh the repository so the newest metadata is signed and pinned (brl repo refresh)');
    }
  }
}

/**
 * The check after building or signing: the full chain of trust, and each of `storedTargets`
 * present with its length (hashes were computed while storing, so images are not read again;
 * targets of a repository extended from its published copy are not local).
 */
export async function verifyLocalRepository(layout: RepoLayout, trustedRoot: RootMetadata, now: number, storedTargets: readonly string[] = []): Promise<ValidateResult> {
  const { result, repository } = await validateAndLoad({ reader: new DirectoryReader(layout.metadataDir, layout.targetsDir), trustedRoot, now });
  const targets = repository.targets.metadata.signed.targets;
  for (const name of storedTargets) {
    const target = targets[name];
    if (!target) throw verificationError(`target ${name} was stored but is not in targets.json`, 'TARGET_MISSING');
    const path = join(layout.targetsDir, consistentTargetPath(name, target.hashes.sha256));
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
      throw verificationError(`target ${name}: ${path} does not exist`, 'TARGET_MISSING');
    }
    if (size !== target.length) throw verificationError(`target ${name}: ${path} has ${size} bytes, targets.json says ${target.length}`, 'TARGET_LENGTH_MISMATCH');
  }
  return result;
}
