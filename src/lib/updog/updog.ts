// updog's operations: find the update for this host, stage it into the inactive set, activate, revert.
import { spawn } from 'node:child_process';
import { open, type FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { BrlError, ExitCode } from '../core/errors.ts';
import { readGpt, writeGpt, partitionOffsetBytes, partitionSizeBytes, type GptPartition } from '../image/gpt.ts';
import { findSets, type PartitionSet } from '../image/banks.ts';
import { activeSet, applySignpostCommand, inactiveSetOf, hostDisk, runSignpostCommand, type SignpostStatus } from '../signpost/index.ts';
import type { Manifest, Update } from '../update-metadata/manifest.ts';
import type { HostUpdateState } from '../update-metadata/select.ts';
import { compareVersions, parseVersion } from '../update-metadata/version.ts';
import type { OsRelease, UpdogConfig } from './config.ts';
import type { TransportOptions } from './http.ts';
import { removeStagedRecord, writeStagedRecord } from './staged-record.ts';
import { withUpdogLock } from './lock.ts';
import { PartitionWriter, lz4FrameContentSize } from './partition-writer.ts';
import type { UpdateRepository } from './repository.ts';

// What only checking and updating need (config TOML, tuf-js, the manifest model, LZ4, dm-verity)
// is imported where it is used, so `--help`, `update-apply` and `update-revert` start fast.

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export const logLevels: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error'];

export interface UpdogOptions {
  /** Host root directory (`/` on a real host). */
  root: string;
  /** OS disk; default the disk the host booted from. */
  disk?: string;
  /** `--image`: a specific version. */
  image?: string;
  /** `--now` / `--ignore-waves`, ORed with the config's ignore_waves. */
  ignoreWaves?: boolean;
  /** Overrides os-release VARIANT_ID. */
  variant?: string;
  /** Current time for wave checks (tests); default now. */
  nowMs?: number;
  log?: (level: LogLevel, message: string) => void;
  /** Transport tuning (tests shorten timeouts and back-off). */
  transport?: Partial<Omit<TransportOptions, 'query' | 'log'>>;
}

interface HostContext {
  config: UpdogConfig;
  osRelease: OsRelease;
  state: HostUpdateState;
  query: Record<string, string>;
  transport: TransportOptions;
  log: (level: LogLevel, message: string) => void;
}

async function hostContext(options: UpdogOptions): Promise<HostContext> {
  // A mistyped --image is refused before any download, not after the repository has been fetched.
  if (options.image !== undefined) parseVersion(options.image, '--image');
  const { loadOsRelease, loadUpdogConfig, updaterArch } = await import('./config.ts');
  const { defaultTransportOptions } = await import('./http.ts');
  const config = await loadUpdogConfig(options.root);
  const osRelease = await loadOsRelease(options.root);
  const log = options.log ?? (() => undefined);
  const query: Record<string, string> = { seed: String(config.seed), version: osRelease.versionId };
  return {
    config,
    osRelease,
    state: {
      variant: options.variant ?? osRelease.variantId,
      arch: updaterArch(),
      version: osRelease.versionId,
      seed: config.seed,
      versionLock: config.versionLock,
      ignoreWaves: config.ignoreWaves || options.ignoreWaves === true,
      nowMs: options.nowMs ?? Date.now(),
    },
    query,
    transport: {
      ...defaultTransportOptions,
      ...options.transport,
      query: () => query,
      log: (level, message) => log(level, message),
      ...(config.httpsProxy === undefined ? {} : { httpsProxy: config.httpsProxy, noProxy: config.noProxy }),
    },
    log,
  };
}

async function loadRepositoryAndManifest(options: UpdogOptions, host: HostContext): Promise<{ repository: UpdateRepository; manifest: Manifest }> {
  const { UpdateRepository } = await import('./repository.ts');
  const { parseManifest } = await import('../update-metadata/manifest.ts');
  const repository = await UpdateRepository.load(options.root, {
    metadataBaseUrl: host.config.metadataBaseUrl,
    targetsBaseUrl: host.config.targetsBaseUrl,
  }, host.transport);
  const manifest = parseManifest((await repository.readTarget('manifest.json')).toString('utf8'), `${host.config.metadataBaseUrl} manifest.json`);
  checkManifestCoversHost(manifest, host.state);
  return { repository, manifest };
}

/** An unknown variant or an arch the repository does not publish is a configuration mistake, not "no update". */
function checkManifestCoversHost(manifest: Manifest, state: HostUpdateState): void {
  const forVariant = manifest.updates.filter((update) => update.variant === state.variant);
  if (forVariant.length === 0) {
    const variants = [...new Set(manifest.updates.map((update) => update.variant))].sort();
    throw new BrlError(`the update repository has no releases of variant ${state.variant} (it has: ${variants.join(', ') || 'none'})`, {
      hint: 'metadata_base_url in /etc/updog.toml must point at this variant\'s repository (…/<variant>/<arch>/)',
      exitCode: ExitCode.notFound,
      code: 'UNKNOWN_VARIANT',
    });
  }
  if (!forVariant.some((update) => update.arch === state.arch)) {
    const arches = [...new Set(forVariant.map((update) => update.arch))].sort();
    throw new BrlError(`the update repository publishes ${state.variant} for ${arches.join(', ')} only, not for this host's ${state.arch}`, {
      hint: 'metadata_base_url in /etc/updog.toml must point at the repository for this architecture',
      exitCode: ExitCode.notFound,
      code: 'WRONG_ARCH',
    });
  }
}

/** `check-update`: the update this host would take (undefined: none), or with `all` every applicable one. */
export async function checkUpdate(options: UpdogOptions): Promise<{ chosen: Update | undefined; applicable: Update[] }> {
  const host = await hostContext(options);
  const { manifest } = await loadRepositoryAndManifest(options, host);
  const { applicableUpdates, chooseUpdate } = await import('../update-metadata/select.ts');
  return { chosen: chooseUpdate(manifest, host.state, options.image), applicable: applicableUpdates(manifest, host.state) };
}

export interface UpdateResult {
  status: 'up-to-date' | 'staged' | 'activated';
  update?: Update;
  /** Migration targets cached for the next boot (manifest.json included). */
  migrations?: string[];
  signpost?: SignpostStatus;
  bytesWritten?: { root: number; boot: number; hash: number };
}

function partitionPlace(partition: GptPartition): { offset: number; size: number } {
  return { offset: partitionOffsetBytes(partition), size: partitionSizeBytes(partition) };
}

/** Refuses, before anything is written, a disk whose inactive set cannot take an update. */
function checkDiskLayout(disk: string, active: PartitionSet, inactive: PartitionSet): void {
  for (const role of ['boot', 'root', 'hash'] as const) {
    const activeSize = partitionSizeBytes(active[role]);
    const inactiveSize = partitionSizeBytes(inactive[role]);
    if (activeSize !== inactiveSize) {
      throw new BrlError(`${disk}: ${role.toUpperCase()}-${inactive.label} is ${inactiveSize} bytes but ${role.toUpperCase()}-${active.label} is ${activeSize}; this is not a Bottlerocket A/B layout updog can update`, {
        hint: 'in-place updates need both sets laid out alike (brl image layout); reinstall from a brl disk image',
        exitCode: ExitCode.badInput,
        code: 'UNSUPPORTED_LAYOUT',
      });
    }
  }
}

/** Reads the first bytes of each image target to refuse images that cannot fit, before the disk is touched. */
async function checkImagesFit(repository: UpdateRepository, update: Update, inactive: PartitionSet, transport: TransportOptions): Promise<void> {
  const { getPrefix } = await import('./http.ts');
  for (const role of ['root', 'boot', 'hash'] as const) {
    const info = await repository.targetInfo(update.images[role]);
    const partitionSize = partitionSizeBytes(inactive[role]);
    const contentSize = lz4FrameContentSize(await getPrefix(repository.targetUrl(info), transport, 15));
    if (contentSize !== undefined && contentSize > partitionSize) {
      throw new BrlError(`${update.images[role]} unpacks to ${contentSize} bytes but ${role.toUpperCase()}-${inactive.label} holds ${partitionSize}; this disk is too small for ${update.version}`, {
        hint: 'the release was built for a larger os-image-size-gib than this host\'s disk',
        exitCode: ExitCode.conflict,
        code: 'PARTITION_TOO_SMALL',
      });
    }
  }
}

/** Streams one image target through the LZ4 decoder into its partition; returns the bytes written. */
async function writeImage(repository: UpdateRepository, name: string, handle: FileHandle, partition: GptPartition, label: string, partialDir: string): Promise<number> {
  const { offset, size } = partitionPlace(partition);
  const writer = new PartitionWriter(handle, offset, size, label);
  const { length } = await repository.targetInfo(name);
  // One decoding thread per core, but none beyond the main thread for images of a few blocks.
  const decoders = length < 16 * 1024 * 1024 ? 1 : availableParallelism();
  const { decodeLz4Parallel } = await import('./lz4-parallel.ts');
  for await (const block of decodeLz4Parallel(repository.streamTarget(name, { partialDir }), { decoders })) await writer.write(block);
  await writer.finish();
  return writer.bytesWritten;
}

/** Writes an image already fetched and checked (a Secure Boot host's BOOT) into its partition; returns the bytes written. */
async function writeFetchedImage(bytes: Buffer, handle: FileHandle, partition: GptPartition, label: string): Promise<number> {
  const { offset, size } = partitionPlace(partition);
  const writer = new PartitionWriter(handle, offset, size, label);
  await writer.write(bytes);
  await writer.finish();
  return writer.bytesWritten;
}

/**
 * `update` / `update-image`: choose, stage migrations, clear the inactive set and swap the
 * migrations in, stream the three
 * images into it, verify the root against the new grub.cfg, mark it valid, and (activate) flip
 * the boot flags. Any failure leaves the inactive set cleared, so it can never be booted half-written.
 */
export async function applyUpdate(options: UpdogOptions & { activate: boolean }): Promise<UpdateResult> {
  return withUpdogLock(options.root, () => applyUpdateLocked(options));
}

async function applyUpdateLocked(options: UpdogOptions & { activate: boolean }): Promise<UpdateResult> {
  const host = await hostContext(options);
  const timed = async <T>(what: string, action: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    const result = await action();
    host.log('debug', `${what} took ${Math.round(performance.now() - started)} ms (RSS ${Math.round(process.memoryUsage.rss() / 1048576)} MiB)`);
    return result;
  };
  const { repository, manifest } = await loadRepositoryAndManifest(options, host);
  const { chooseUpdate, findMigrations } = await import('../update-metadata/select.ts');
  const update = chooseUpdate(manifest, host.state, options.image);
  if (!update) return { status: 'up-to-date' };
  host.log('info', `Starting update to ${update.version}`);
  host.query.target = update.version;

  const disk = await hostDisk(options);
  const { table } = await readGpt(disk);
  const sets = findSets(table, disk);
  const active = await activeSet(options.root, sets, disk);
  const inactive = inactiveSetOf(sets, active, disk);
  checkDiskLayout(disk, active, inactive);
  await checkImagesFit(repository, update, inactive, host.transport);
  // Bytes kept by an interrupted run of this update are resumed from; any others are stale.
  const [{ hostPaths }, { prunePartialDownloads }] = await Promise.all([import('./paths.ts'), import('./partial-download.ts')]);
  const partialDir = hostPaths(options.root).partialDownloads;
  const imageShas = await Promise.all((['root', 'boot', 'hash'] as const).map(async (role) => (await repository.targetInfo(update.images[role])).hashes.sha256 ?? ''));
  await prunePartialDownloads(partialDir, imageShas);
  // A Secure Boot host takes only a BOOT its GRUB would boot, checked before anything is written;
  // the bytes checked are the bytes written.
  const { fetchVerifiedBootImage, runningGrubKey } = await import('./boot-image.ts');
  const grubKey = await runningGrubKey(options.root);
  const verifiedBoot = grubKey === undefined ? undefined : await timed(`verifying the signatures of ${update.images.boot}`,
    () => fetchVerifiedBootImage(repository, update.images.boot, partitionSizeBytes(inactive.boot), grubKey, partialDir));

  const running = parseVersion(host.state.version, 'VERSION_ID');
  const target = parseVersion(update.version, 'update version');
  const [low, high] = compareVersions(running, target) <= 0 ? [host.state.version, update.version] : [update.version, host.state.version];
  const migrationNames = [...findMigrations(manifest, low, high), 'manifest.json'];
  host.query.migrations = migrationNames.join(',');
  const { stageMigrations } = await import('./migrations.ts');
  const stagedMigrations = await stageMigrations(options.root, repository, host.transport, migrationNames);
  try {
    await removeStagedRecord(options.root);
    await writeGpt(disk, applySignpostCommand(table, 'clear-inactive', active.label, disk));
    // Only now: the live cache vouched for the update staged in the set just cleared.
    await stagedMigrations.commit();
  } catch (error) {
    await stagedMigrations.discard();
    throw error;
  }
  host.log('debug', `cached ${migrationNames.length} migration targets`);
  const handle = await open(disk, 'r+');
  let bytesWritten: UpdateResult['bytesWritten'];
  try {
    const write = (role: 'root' | 'boot' | 'hash'): Promise<number> =>
      timed(`writing ${update.images[role]} to ${role.toUpperCase()}-${inactive.label}`,
        () => writeImage(repository, update.images[role], handle, inactive[role], `${role.toUpperCase()}-${inactive.label}`, partialDir));
    const root = await write('root');
    const boot = verifiedBoot === undefined ? await write('boot')
      : await timed(`writing the verified ${update.images.boot} to BOOT-${inactive.label}`,
        () => writeFetchedImage(verifiedBoot, handle, inactive.boot, `BOOT-${inactive.label}`));
    const hash = await write('hash');
    bytesWritten = { root, boot, hash };
    const { verifyWrittenSet } = await import('./verity-check.ts');
    await timed('verifying the written set against grub.cfg', () =>
      verifyWrittenSet(disk, handle, { boot: partitionPlace(inactive.boot), root: partitionPlace(inactive.root), hash: partitionPlace(inactive.hash) }));
  } finally {
    await handle.close();
  }
  let status = await runSignpostCommand(options, 'mark-inactive-valid');
  await writeStagedRecord(options.root, {
    set: inactive.label,
    bootPartUuid: inactive.boot.uniqueGuid,
    image: { arch: update.arch, version: update.version, variant: update.variant },
  });
  if (options.activate) status = await runSignpostCommand(options, 'upgrade-to-inactive');
  return { status: options.activate ? 'activated' : 'staged', update, migrations: migrationNames, signpost: status, bytesWritten };
}

/** `update-apply`: boot the staged set next. */
export async function applyStagedUpdate(options: Pick<UpdogOptions, 'root' | 'disk'>): Promise<SignpostStatus> {
  return withUpdogLock(options.root, () => runSignpostCommand(options, 'upgrade-to-inactive'));
}

/** `update-revert`: undo `update-apply` before rebooting. */
export async function revertUpdate(options: Pick<UpdogOptions, 'root' | 'disk'>): Promise<SignpostStatus> {
  return withUpdogLock(options.root, () => runSignpostCommand(options, 'cancel-upgrade'));
}

/**
 * Runs the reboot command (default `shutdown -r`; `UPDOG_REBOOT_COMMAND` overrides it, e.g.
 * for tests). SIGTERM is ignored from here on so the shutdown cannot kill updog mid-way.
 */
export async function reboot(command = process.env.UPDOG_REBOOT_COMMAND ?? 'shutdown -r'): Promise<void> {
  process.on('SIGTERM', () => undefined);
  await new Promise<void>((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new BrlError(`reboot command "${command}" exited with ${code}`, { exitCode: ExitCode.failure, code: 'REBOOT_FAILED' }))));
  });
}
