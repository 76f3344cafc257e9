// `brl build variant`: packages → closure → staged tree → filesystems → verity → disks → artifacts, atomically.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { runTasks, type ProgressMode } from '../cli/progress.ts';
import { BrlError, ExitCode } from '../core/errors.ts';
import { buildDir } from '../core/paths.ts';
import { requireHostTools } from '../doctor/doctor.ts';
import type { ArtifactRecord } from './artifacts.ts';
import { resolveBuildIdentity } from './build-identity.ts';
import { buildDisks, buildRoot, buildSupportFilesystems, stageTrees, writeArtifacts, type Composition, type Work } from './compose.ts';
import { loadVariant, supportedArchitectures, type Architecture, type VariantDefinition } from './definition.ts';
import { loadBootSigningKeys } from '../secure-boot/key-set.ts';
import type { SelinuxSummary } from './selinux-boot.ts';
import { bootSigningSummary, type BootSigningSummary } from '../secure-boot/boot-path.ts';
import { secureBootKeyLocations } from '../secure-boot/settings.ts';
import { loadRelease, withVersionOverride } from './release.ts';
import { variantPackages } from './variant-packages.ts';

export interface BuildVariantOptions {
  arch?: string;
  progress?: ProgressMode;
  /** Package builds at once (default from brl.toml). */
  jobs?: number;
  env?: NodeJS.ProcessEnv;
  /** Called for each warning as it happens (the result lists them too). */
  onWarning?: (message: string) => void;
}

export interface VariantBuildResult {
  variant: string;
  arch: Architecture;
  version: string;
  buildId: string;
  sourceDateEpoch: number;
  outputDir: string;
  latestLink: string;
  rootFilesystem: 'ext4' | 'erofs';
  verity: { rootHash: string; salt: string; uuid: string; dataBlocks: number; hashSize: number };
  packages: Array<{ name: string; version: string; release: string; arch: string }>;
  artifacts: ArtifactRecord[];
  warnings: string[];
  durationMs: number;
  /** Wall time of each stage, in the order they ran. */
  stageDurationsMs: Record<string, number>;
  /** Whether GRUB, the kernel and GRUB's files are signed for UEFI Secure Boot (uefi-secure-boot). */
  bootSigning: BootSigningSummary;
  /** The LSM the kernel starts and the SELinux policy the root carries; they must agree. */
  selinux: SelinuxSummary;
}

export async function buildVariant(projectDir: string, name: string, options: BuildVariantOptions = {}): Promise<VariantBuildResult> {
  const started = performance.now();
  const env = options.env ?? process.env;
  const warnings: string[] = [];
  const warn = (message: string): void => {
    warnings.push(message);
    options.onWarning?.(message);
  };
  const definition = await loadVariant(projectDir, name);
  definition.warnings.forEach(warn);
  const arch = checkArch(definition, options.arch ?? 'x86_64');
  // Missing, mismatched or expired keys fail here, before a package is built or a file written.
  const bootSigning = definition.features['uefi-secure-boot'] ? await loadBootSigningKeys(await secureBootKeyLocations(projectDir, env)) : undefined;
  const release = withVersionOverride(await loadRelease(projectDir), env);
  const identity = await resolveBuildIdentity(projectDir, env);
  requireHostTools(['rpm', 'mkfs.ext4', 'debugfs', 'resize2fs', 'lz4', ...(definition.features['erofs-root-partition'] ? ['mkfs.erofs'] : []), ...(definition.imageFormat === 'raw' ? [] : ['qemu-img'])]);

  const imagesDir = join(buildDir(projectDir), 'images', `${arch}-${name}`);
  const tempDir = join(imagesDir, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const work: Work = {
    definition, release, identity, arch,
    ids: { sourceDateEpoch: identity.sourceDateEpoch, variant: name, arch },
    naming: { imageName: env.BUILDSYS_NAME || 'bottlerocket', variant: name, arch, version: release.version, buildId: identity.buildId },
    prettyName: env.BUILDSYS_PRETTY_NAME || 'Bottlerocket OS',
    tempDir, outDir: join(tempDir, 'out'), packages: [], warnings, warn,
    tufRootJson: env.PUBLISH_REPO_ROOT_JSON || undefined,
    caBundle: env.BUILDSYS_CACERTS_BUNDLE_OVERRIDE || undefined,
    bootSigning,
  };
  const packagesStarted = performance.now();
  work.packages = await variantPackages(projectDir, definition, arch, options);
  const stageDurationsMs: Record<string, number> = { packages: Math.round(performance.now() - packagesStarted) };
  await mkdir(imagesDir, { recursive: true });
  await removeAbandonedTempDirs(imagesDir);
  try {
    await mkdir(work.outDir, { recursive: true });
    const composed: Partial<Composition> = {};
    const stage = (title: string, step: (c: Composition) => Promise<Partial<Composition>>) => ({
      title,
      task: async () => {
        const stageStarted = performance.now();
        Object.assign(composed, await step(composed as Composition));
        stageDurationsMs[title] = Math.round(performance.now() - stageStarted);
      },
    });
    await runTasks<object>([
      stage(`install ${work.packages.length} packages`, () => stageTrees(work)),
      stage('root filesystem and dm-verity', (c) => buildRoot(work, c)),
      stage('boot, private and data filesystems', (c) => buildSupportFilesystems(work, c)),
      stage('disk images', (c) => buildDisks(work, c)),
      stage('artifacts', (c) => writeArtifacts(work, c)),
    ], { mode: options.progress ?? 'auto' });
    const finalName = `${release.version}-${identity.buildId}`;
    const outputDir = join(imagesDir, finalName);
    await publish(work.outDir, outputDir);
    const latestLink = join(imagesDir, 'latest');
    const linkTemp = join(imagesDir, `.latest-${randomBytes(4).toString('hex')}`);
    await symlink(finalName, linkTemp);
    await rename(linkTemp, latestLink);
    const c = composed as Composition;
    return {
      variant: name, arch, version: release.version, buildId: identity.buildId, sourceDateEpoch: identity.sourceDateEpoch,
      outputDir, latestLink,
      rootFilesystem: definition.features['erofs-root-partition'] ? 'erofs' : 'ext4',
      verity: { rootHash: c.verity.rootHash, salt: c.verity.salt, uuid: c.verity.uuid, dataBlocks: c.verity.dataBlocks, hashSize: c.verity.hashSize },
      packages: work.packages.map((pkg) => ({ name: pkg.name, version: pkg.version, release: pkg.release, arch: pkg.arch })),
      artifacts: c.artifacts.map((artifact) => ({ ...artifact })),
      warnings,
      durationMs: Math.round(performance.now() - started),
      stageDurationsMs,
      bootSigning: bootSigningSummary(bootSigning),
      selinux: c.selinux,
    };
  } finally {
    await rm(tempDir, { recursive: true, force: true });
    // A first build that failed leaves no empty directory behind either.
    if ((await readdir(imagesDir)).length === 0) await rm(imagesDir, { recursive: true, force: true });
  }
}

function checkArch(definition: VariantDefinition, arch: string): Architecture {
  if (!(supportedArchitectures as readonly string[]).includes(arch)) {
    throw new BrlError(`unknown architecture "${arch}"`, {
      hint: `use one of: ${supportedArchitectures.join(', ')}`,
      exitCode: ExitCode.usage,
      code: 'BAD_ARCH',
    });
  }
  if (!definition.supportedArches.includes(arch as Architecture)) {
    throw new BrlError(`variant ${definition.name} does not support ${arch} (supported-arches: ${definition.supportedArches.join(', ')})`, {
      hint: `build it with --arch ${definition.supportedArches[0]}, or add "${arch}" to supported-arches in ${definition.manifestPath}`,
      exitCode: ExitCode.badInput,
      code: 'UNSUPPORTED_ARCH',
    });
  }
  // The signing path makes and signs GRUB's x86_64-efi image (compose.ts); an arm64 one is not done.
  if (arch === 'aarch64' && definition.features['uefi-secure-boot']) {
    throw new BrlError(`variant ${definition.name}: uefi-secure-boot is built for x86_64 only, not aarch64`, {
      hint: `build it with --arch x86_64, or set uefi-secure-boot = false under [image-features] in ${definition.manifestPath}`,
      exitCode: ExitCode.badInput,
      code: 'UNSUPPORTED_ARCH',
    });
  }
  return arch as Architecture;
}

/** A crashed build leaves `.tmp-<pid>-*`; remove those whose process is gone. */
async function removeAbandonedTempDirs(imagesDir: string): Promise<void> {
  for (const entry of await readdir(imagesDir)) {
    const pid = /^\.tmp-(\d+)-[0-9a-f]+$/.exec(entry)?.[1];
    if (pid === undefined || processAlive(Number(pid))) continue;
    await rm(join(imagesDir, entry), { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Swaps the finished directory into place; an earlier build of the same id is replaced whole. */
async function publish(from: string, to: string): Promise<void> {
  if (existsSync(to)) {
    const old = `${to}.old-${randomBytes(4).toString('hex')}`;
    await rename(to, old);
    try {
      await rename(from, to);
    } catch (error) {
      // Put the previous build back rather than leave no build at this path.
      await rename(old, to);
      throw error;
    }
    await rm(old, { recursive: true, force: true });
  } else {
    await rename(from, to);
  }
}
