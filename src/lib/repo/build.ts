// `brl repo build`: adds one variant build (images, manifest entry, migrations) to a repository.
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { runTasks, type ProgressMode } from '../cli/progress.ts';
import { mapLimit } from '../core/concurrency.ts';
import { BrlError, ExitCode, fileError } from '../core/errors.ts';
import { makeDir } from '../core/fs.ts';
import type { Signer } from '../signing/signer.ts';
import { parseRoot, type RootMetadata } from '../tuf/root.ts';
import { newSnapshot, newTimestamp } from '../tuf/snapshot.ts';
import { consistentTargetPath, newTargets, type TargetsMetadata } from '../tuf/targets.ts';
import { requireTargetMatch, sha256Hex } from '../tuf/verify.ts';
import {
  addUpdate,
  emptyManifest,
  findUpdate,
  parseManifest,
  serializeManifest,
  setMigrations,
  setWaves,
  type Manifest,
  type WavePolicyEntry,
} from '../update-metadata/index.ts';
import type { BuildImages } from './build-images.ts';
import type { RepoConfig } from './infra.ts';
import { repoLayout } from './layout.ts';
import { loadRepository, type LoadedRepository } from './load.ts';
import { publishedRoots, rootChain } from './root-chain.ts';
import { readRootHistory } from './root-file.ts';
import { applyVersionsAndExpirations, pinChain, signChain, signersByRole, writeMetadataSet, type MetadataSet } from './metadata-set.ts';
import type { ExpirationPolicy } from './policy.ts';
import { DirectoryReader, HttpReader, withSlash, type RepoReader } from './reader.ts';
import { storeTargetBytes, storeTargetFile, type StoredTarget } from './target-store.ts';
import { verifyLocalRepository } from './validate.ts';

export interface BuildOptions {
  variant: string;
  arch: string;
  repo: RepoConfig;
  outdir: string;
  /** The root file: its newest version signs; it and the versions kept beside it are published. */
  rootPath: string;
  images: BuildImages;
  /** Release.toml `[migrations]`; replaces the manifest's map when given. */
  migrations?: Record<string, string[]>;
  wavePolicy: WavePolicyEntry[];
  expirationPolicy: ExpirationPolicy;
  now: number;
  releaseStart: number;
  extraLinkTargets?: string[];
  extraCopyTargets?: string[];
  /** Sign after building (`--sign`); without signers the metadata is staged unsigned. */
  signers?: Signer[];
  /** Progress display; silent by default. */
  progress?: ProgressMode;
}

export interface BuildResult {
  metadataDir: string;
  targetsDir: string;
  variant: string;
  arch: string;
  version: string;
  /** Where the repository was extended from: a directory, a URL, or nothing (a new repository). */
  extendedFrom?: string;
  targets: StoredTarget[];
  versions: { root: number; targets: number; snapshot: number; timestamp: number };
  expires: { targets: string; snapshot: string; timestamp: string };
  signed: boolean;
}

/** Extra targets the user named must be regular files; checked before anything is written. */
async function requireTargetFiles(paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    const info = await stat(path).catch((error: unknown) => {
      throw fileError(error, path, { what: 'target file' }) ?? error;
    });
    if (!info.isFile()) {
      throw new BrlError(`target file ${path} is not a regular file`, { exitCode: ExitCode.badInput, code: 'NOT_A_FILE', hint: 'pass files to --link-target and --copy-target' });
    }
  }
}

export async function buildRepository(options: BuildOptions): Promise<BuildResult> {
  const layout = repoLayout(options.outdir, options.variant, options.arch);
  const configuredRoots = await readRootHistory(options.rootPath);
  const newest = configuredRoots.at(-1)!;
  const root = parseRoot(newest.bytes, `root v${newest.version}`);
  // A gap or a bad rotation in the root file's history is refused before anything is written.
  rootChain({ published: [], configured: configuredRoots, rootPath: options.rootPath, repository: layout.metadataDir });
  // An existing repository is read from the oldest root kept, through the rotations it publishes.
  const oldest = configuredRoots.length === 1 ? root : parseRoot(configuredRoots[0]!.bytes, `root v${configuredRoots[0]!.version}`);
  if (!root.signed.consistent_snapshot) {
    throw new BrlError('the root has consistent_snapshot = false; brl repositories use consistent snapshots', { exitCode: ExitCode.badInput, code: 'BAD_ROOT' });
  }
  // Keys root does not list, or too few of them, are refused before anything is written.
  const byRole = options.signers ? signersByRole(root, options.signers) : undefined;
  const images = options.images;
  const files = [images.boot, images.root, images.hash, ...images.linkTargets, ...(options.extraLinkTargets ?? []), ...(options.extraCopyTargets ?? [])];
  await requireTargetFiles([...(options.extraLinkTargets ?? []), ...(options.extraCopyTargets ?? [])]);

  let loaded: Awaited<ReturnType<typeof loadExisting>> = {};
  let targets = newTargets(1, root.signed.expires);
  let manifest = emptyManifest();
  const stored: StoredTarget[] = [];
  let set: MetadataSet | undefined;
  await runTasks<object>([
    {
      title: 'load the existing repository and manifest',
      task: async () => {
        loaded = await loadExisting(options, layout, oldest);
        if (loaded.existing) {
          targets = { signatures: [], signed: structuredClone(loaded.existing.targets.metadata.signed) };
          manifest = await readExistingManifest(loaded.existing.targets.metadata, loaded.reader!, layout.targetsDir);
        }
        const names = { boot: basename(images.boot), root: basename(images.root), hash: basename(images.hash) };
        const key = { variant: options.variant, arch: options.arch, version: images.version };
        // The same images again (their targets are checked unchanged when stored) is a re-release:
        // only waves and migrations are set anew, e.g. to move a rollout's start.
        const released = findUpdate(manifest, key);
        const sameImages = released !== undefined && released.images.boot === names.boot && released.images.root === names.root && released.images.hash === names.hash;
        if (!sameImages) manifest = addUpdate(manifest, { ...key, images: names });
        manifest = setWaves(manifest, key, options.wavePolicy, options.releaseStart * 1000);
        if (options.migrations) manifest = setMigrations(manifest, options.migrations);
      },
    },
    {
      // Targets go in before any metadata refers to them.
      title: `store ${files.length} target file(s), manifest.json${images.migrationsTar ? ' and the migrations' : ''} in ${layout.targetsDir}`,
      task: async () => {
        await makeDir(layout.targetsDir);
        stored.push(...(await mapLimit(files, targetJobs, (path) => storeTargetFile(layout.targetsDir, targets.signed, basename(path), path))));
        refuseDuplicateNames(files, stored);
        if (images.migrationsTar) stored.push(...(await storeMigrations(layout.targetsDir, targets, images.migrationsTar)));
        delete targets.signed.targets['manifest.json'];
        stored.push(await storeTargetBytes(layout.targetsDir, targets.signed, 'manifest.json', Buffer.from(serializeManifest(manifest)), 'manifest.json'));
      },
    },
    {
      title: `${byRole ? 'sign and write' : 'write unsigned'} metadata in ${layout.metadataDir}`,
      task: async () => {
        const existing = loaded.existing;
        const previous: MetadataSet | undefined = existing && { targets: existing.targets.metadata, snapshot: existing.snapshot.metadata, timestamp: existing.timestamp.metadata };
        const placeholder = { version: 1, length: 0, hashes: { sha256: '' } };
        set = {
          targets,
          snapshot: existing ? { signatures: [], signed: structuredClone(existing.snapshot.metadata.signed) } : newSnapshot(1, targets.signed.expires, placeholder),
          timestamp: existing ? { signatures: [], signed: structuredClone(existing.timestamp.metadata.signed) } : newTimestamp(1, targets.signed.expires, placeholder),
        };
        applyVersionsAndExpirations(set, options.now, options.releaseStart, options.expirationPolicy, previous);
        pinChain(set);
        if (byRole) await signChain(set, byRole, root);
        await makeDir(layout.metadataDir);
        const chain = rootChain({ published: publishedRoots(existing), configured: configuredRoots, rootPath: options.rootPath, repository: layout.metadataDir });
        await writeMetadataSet(layout.metadataDir, chain.versions, set, true);
        // Checked as a client holding the oldest published root sees it: through every rotation.
        if (byRole) await verifyLocalRepository(layout, chain.roots[0]!, options.now, stored.map((target) => target.name));
      },
    },
  ], { mode: options.progress ?? 'silent' });

  const written = set!;
  return {
    metadataDir: layout.metadataDir,
    targetsDir: layout.targetsDir,
    variant: options.variant,
    arch: options.arch,
    version: images.version,
    ...(loaded.extendedFrom ? { extendedFrom: loaded.extendedFrom } : {}),
    targets: stored,
    versions: { root: newest.version, targets: written.targets.signed.version, snapshot: written.snapshot.signed.version, timestamp: written.timestamp.signed.version },
    expires: { targets: written.targets.signed.expires, snapshot: written.snapshot.signed.expires, timestamp: written.timestamp.signed.expires },
    signed: byRole !== undefined,
  };
}

/**
 * A staged repository in the output directory is extended as it is (it may be unsigned); a
 * published one (metadata_base_url) must verify, expiry aside, since its content is carried over.
 */
async function loadExisting(options: BuildOptions, layout: ReturnType<typeof repoLayout>, root: RootMetadata): Promise<{ existing?: LoadedRepository; reader?: RepoReader; extendedFrom?: string }> {
  const local = new DirectoryReader(layout.metadataDir, layout.targetsDir);
  const common = { trustedRoot: root, now: options.now, enforceExpiry: false };
  const staged = await loadRepository(local, { ...common, verifySignatures: false });
  if (staged) return { existing: staged, reader: local, extendedFrom: layout.metadataDir };
  const { metadataBaseUrl, targetsUrl } = options.repo;
  if (metadataBaseUrl && targetsUrl) {
    const remote = new HttpReader(`${withSlash(metadataBaseUrl)}${options.variant}/${options.arch}/`, targetsUrl);
    const published = await loadRepository(remote, { ...common, verifySignatures: true });
    if (published) return { existing: published, reader: remote, extendedFrom: remote.metadataLocation('') };
  }
  return {};
}

async function readExistingManifest(targets: TargetsMetadata, reader: RepoReader, targetsDir: string): Promise<Manifest> {
  const entry = targets.signed.targets['manifest.json'];
  if (!entry) return emptyManifest();
  const fileName = consistentTargetPath('manifest.json', entry.hashes.sha256);
  let bytes: Buffer | undefined;
  try {
    bytes = await readFile(join(targetsDir, fileName));
  } catch {
    const stream = await reader.openTarget(fileName);
    bytes = stream && (await buffer(stream));
  }
  if (bytes === undefined) {
    throw new BrlError(`the repository lists manifest.json, but ${reader.targetLocation(fileName)} cannot be read`, {
      hint: 'check targets_url in Infra.toml, or that the targets directory was published',
      exitCode: ExitCode.notFound,
      code: 'MANIFEST_MISSING',
    });
  }
  requireTargetMatch('manifest.json', bytes.length, sha256Hex(bytes), entry);
  return parseManifest(bytes.toString('utf8'), reader.targetLocation(fileName));
}

/** Every file in `<prefix>-migrations.tar` becomes a target (pubsys copy targets). */
async function storeMigrations(targetsDir: string, targets: TargetsMetadata, tarPath: string): Promise<StoredTarget[]> {
  const stored: StoredTarget[] = [];
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    if (header.type !== 'file') {
      stream.resume();
      stream.on('end', next);
      return;
    }
    buffer(stream)
      .then((bytes) => storeTargetBytes(targetsDir, targets.signed, basename(header.name), bytes, `${tarPath}:${header.name}`))
      .then((target) => {
        stored.push(target);
        next();
      })
      .catch((error: unknown) => next(error as Error));
  });
  await pipeline(createReadStream(tarPath), extract);
  return stored;
}

/** Two different files given under one target name in the same build (stored concurrently) are a conflict too. */
function refuseDuplicateNames(files: readonly string[], stored: readonly StoredTarget[]): void {
  const seen = new Map<string, number>();
  stored.forEach((target, index) => {
    const first = seen.get(target.name);
    if (first === undefined) {
      seen.set(target.name, index);
    } else if (stored[first]!.sha256 !== target.sha256) {
      throw new BrlError(`target name ${target.name} is given twice with different content: ${files[first]} and ${files[index]}`, {
        hint: 'rename one of the files; a target name always means one content',
        exitCode: ExitCode.conflict,
        code: 'TARGET_CONFLICT',
      });
    }
  });
}

/** Hashing and linking is I/O-bound: several files at a time keep the disk and the cores busy. */
const targetJobs = 16;

