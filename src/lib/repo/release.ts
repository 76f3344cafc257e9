// Resolves what `brl repo build` needs from the project (root, images, Release.toml, policies, keys) and builds.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ProgressMode } from '../cli/progress.ts';
import { buildDir } from '../core/paths.ts';
import { loadRelease } from '../variant/release.ts';
import { nowSeconds, parseTimeSpec } from '../tuf/time.ts';
import { defaultImagesDir, findBuildImages } from './build-images.ts';
import { buildRepository, type BuildResult } from './build.ts';
import { defaultOutdir, openSigners, repoContext } from './context.ts';
import { loadExpirationPolicy, resolveWavePolicy } from './policy.ts';
import { resolveRootPath } from './root-file.ts';

export interface ReleaseBuildOptions {
  variant: string;
  arch: string;
  repo: string;
  infraConfigPath?: string;
  rootRolePath?: string;
  outdir?: string;
  imagesDir?: string;
  version?: string;
  releaseStartTime?: string;
  wavePolicy: string;
  expirationPolicyPath?: string;
  linkTargets?: string[];
  copyTargets?: string[];
  /** true: sign (keys required); false: stage unsigned; undefined: sign when keys are available. */
  sign?: boolean;
  keys?: string[];
  progress?: ProgressMode;
}

export async function buildRelease(options: ReleaseBuildOptions): Promise<BuildResult & { rootPath: string; outdir: string }> {
  const context = await repoContext({ repo: options.repo, infraConfigPath: options.infraConfigPath });
  const { projectDir, config } = context;
  const now = nowSeconds();
  const releaseStart = options.releaseStartTime ? parseTimeSpec(options.releaseStartTime, now, 'release start time') : now;
  const release = existsSync(join(projectDir, 'Release.toml')) ? await loadRelease(projectDir) : undefined;
  const version = options.version?.replace(/^v/, '') ?? release?.version;
  const images = await findBuildImages(options.imagesDir ?? defaultImagesDir(buildDir(projectDir), options.variant, options.arch), options.variant, options.arch, version);
  const rootPath = await resolveRootPath(config, { projectDir, ...(options.rootRolePath ? { rootRolePath: options.rootRolePath } : {}) });
  const keysAvailable = (options.keys?.length ?? 0) > 0 || config.signingKeys !== undefined;
  const signers = options.sign === true || (options.sign === undefined && keysAvailable) ? await openSigners(options.keys, config) : undefined;
  const outdir = options.outdir ?? defaultOutdir(projectDir, options.repo);
  const result = await buildRepository({
    variant: options.variant,
    arch: options.arch,
    repo: config,
    outdir,
    rootPath,
    images,
    ...(release ? { migrations: Object.fromEntries(release.migrations.map((step) => [`(${step.from}, ${step.to})`, step.migrations])) } : {}),
    wavePolicy: await resolveWavePolicy(options.wavePolicy),
    expirationPolicy: await loadExpirationPolicy(options.expirationPolicyPath),
    now,
    releaseStart,
    ...(options.linkTargets ? { extraLinkTargets: options.linkTargets } : {}),
    ...(options.copyTargets ? { extraCopyTargets: options.copyTargets } : {}),
    ...(signers ? { signers } : {}),
    ...(options.progress ? { progress: options.progress } : {}),
  });
  return { ...result, rootPath, outdir };
}
