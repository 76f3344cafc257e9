// `brl container build NAME`: the locked debs of host-containers/NAME plus brl's files → one
// reproducible layer → image config, manifest and index in an OCI layout at build/containers/NAME.
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { buildDir } from '../core/paths.ts';
import { lockedExternalFiles } from '../debian/package-debs.ts';
import { fetchExternalFiles, type FetchConfig } from '../fetch/index.ts';
import type { ProgressMode } from '../cli/progress.ts';
import { readDebControl } from './deb.ts';
import { loadContainerImage, staleLock, type ContainerImageDefinition } from './definition.ts';
import { renderDpkgStatus, type InstalledDeb } from './dpkg-status.ts';
import { writeLayer, type LayerResult } from './layer.ts';
import { blobPath, makeStagingLayout, replaceLayout, writeBlob, writeIndex } from './layout.ts';
import { jsonBytes, mediaTypes, ociArchitecture, type ImageConfig, type ImageManifest } from './models.ts';
import { mergeUsr, RootTree } from './root-tree.ts';

/**
 * mtime of every entry and the config's `created` when SOURCE_DATE_EPOCH is unset: 1980-01-01, as
 * for packages, so an image's digest changes only with its inputs, never with the commit.
 */
export const defaultImageEpoch = 315532800;

export interface ContainerBuildOptions {
  fetch: FetchConfig;
  progress?: ProgressMode;
  log?: (line: string) => void;
  /** Where layouts go; default `build/containers`. */
  outputDir?: string;
  env?: NodeJS.ProcessEnv;
}

export interface ContainerBuildResult {
  name: string;
  tag: string;
  layoutDir: string;
  /** `sha256:` of the image manifest: what a registry reference is pinned by. */
  manifestDigest: string;
  configDigest: string;
  layer: LayerResult;
  debs: number;
  sourceDateEpoch: number;
  seconds: number;
}

export function containersBuildDir(projectDir: string): string {
  return join(buildDir(projectDir), 'containers');
}

export async function buildContainerImage(projectDir: string, name: string, options: ContainerBuildOptions): Promise<ContainerBuildResult> {
  const started = performance.now();
  const definition = await loadContainerImage(projectDir, name);
  const epoch = sourceDateEpoch(options.env ?? process.env);
  const outputDir = options.outputDir ?? containersBuildDir(projectDir);
  await mkdir(outputDir, { recursive: true });
  const finalDir = join(outputDir, name);
  const layoutDir = await makeStagingLayout(finalDir);
  const treeDir = `${layoutDir}.tree`;
  try {
    await mkdir(treeDir);
    const { tree, debs } = await assembleRoot(definition, treeDir, options);
    options.log?.(`${name}: ${tree.size} entries from ${debs} debs; writing the layer`);
    const layerTemp = join(layoutDir, 'blobs', 'sha256', '.layer.tmp');
    const layer = await writeLayer(tree, layerTemp, epoch);
    await rename(layerTemp, blobPath(layoutDir, layer.digest));
    await rm(treeDir, { recursive: true, force: true });

    const created = new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z');
    const config = imageConfig(definition, layer.diffId, created);
    const configDescriptor = await writeBlob(layoutDir, mediaTypes.config, jsonBytes(config));
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: mediaTypes.manifest,
      config: configDescriptor,
      layers: [{ mediaType: mediaTypes.layerGzip, digest: layer.digest, size: layer.size }],
    };
    const manifestDescriptor = await writeBlob(layoutDir, mediaTypes.manifest, jsonBytes(manifest));
    await writeIndex(layoutDir, manifestDescriptor, definition.version);
    await replaceLayout(layoutDir, finalDir);
    return {
      name,
      tag: definition.version,
      layoutDir: finalDir,
      manifestDigest: manifestDescriptor.digest,
      configDigest: configDescriptor.digest,
      layer,
      debs,
      sourceDateEpoch: epoch,
      seconds: Math.round((performance.now() - started) / 100) / 10,
    };
  } finally {
    await rm(treeDir, { recursive: true, force: true });
    await rm(layoutDir, { recursive: true, force: true });
  }
}

async function assembleRoot(definition: ContainerImageDefinition, treeDir: string, options: ContainerBuildOptions): Promise<{ tree: RootTree; debs: number }> {
  const lock = definition.debian.lock;
  if (lock === undefined) throw staleLock(definition);
  const externalFiles = lockedExternalFiles(lock);
  // fetch works on package definitions; an image's locked debs are fetched and cached the same way.
  const fetched = await fetchExternalFiles(
    [{ name: definition.name, dir: definition.dir, specPath: definition.manifestPath, manifestPath: definition.manifestPath, externalFiles, buildDependencies: [], hardeningExceptions: [] }],
    options.fetch,
    { progress: options.progress ?? 'silent' },
  );
  const tree = new RootTree(treeDir);
  const installed: InstalledDeb[] = [];
  for (const [index, deb] of lock.debs.entries()) {
    const path = fetched[index]?.path;
    if (path === undefined) throw new Error(`internal: no fetched file for ${deb.name}`);
    const label = `${deb.name}_${deb.version}`;
    const control = await readDebControl(path);
    installed.push({ control, conffileMd5: await tree.addDeb(path, label, control) });
  }
  tree.addUsrMergeLinks();
  tree.drop(definition.dropPaths);
  for (const file of definition.files) {
    const content = file.text !== undefined ? Buffer.from(file.text, 'utf8') : file.from !== undefined ? tree.read(file.from) : createReadStream(file.source ?? '');
    try {
      await tree.addFile(file.path, file.mode, content);
    } catch (error) {
      if (file.source !== undefined && (error as { code?: string }).code === 'ENOENT') {
        throw new BrlError(`${definition.manifestPath}: files entry for ${file.path}: ${file.source} does not exist`, { exitCode: ExitCode.notFound, code: 'FILE_NOT_FOUND' });
      }
      throw error;
    }
  }
  for (const link of definition.links) {
    // A link brl adds must lead somewhere: a typo in image.toml would otherwise ship a dangling link.
    const resolved = mergeUsr(posix.normalize(posix.resolve(posix.dirname(link.path), link.target)).replace(/^\/+/, ''));
    if (tree.get(resolved) === undefined) {
      throw new BrlError(`${definition.manifestPath}: link ${link.path} -> ${link.target}: /${resolved} is not in the image`, { exitCode: ExitCode.badInput, code: 'DANGLING_LINK' });
    }
    tree.addSymlink(link.path, link.target);
  }
  await tree.addFile('/var/lib/dpkg/status', 0o644, Buffer.from(renderDpkgStatus(installed), 'utf8'));
  return { tree, debs: lock.debs.length };
}

function imageConfig(definition: ContainerImageDefinition, diffId: string, created: string): ImageConfig {
  const run = definition.config;
  return {
    created,
    architecture: ociArchitecture(definition.debian.roots.architecture),
    os: 'linux',
    config: {
      User: run.user,
      ...(run.env.length > 0 ? { Env: run.env } : {}),
      ...(run.entrypoint.length > 0 ? { Entrypoint: run.entrypoint } : {}),
      ...(run.cmd.length > 0 ? { Cmd: run.cmd } : {}),
      WorkingDir: run.workingDir,
      ...(Object.keys(run.labels).length > 0 ? { Labels: run.labels } : {}),
    },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created, created_by: `brl container build ${definition.name} (host-containers/${definition.name}/image.toml, debs.lock)` }],
  };
}

export function sourceDateEpoch(env: NodeJS.ProcessEnv): number {
  const value = env.SOURCE_DATE_EPOCH;
  if (value === undefined || value === '') return defaultImageEpoch;
  if (!/^\d+$/.test(value)) {
    throw new BrlError(`SOURCE_DATE_EPOCH="${value}" is not a whole number of seconds`, {
      hint: `unset it (images then use ${defaultImageEpoch}, 1980-01-01) or set a number of seconds`,
      exitCode: ExitCode.badInput,
      code: 'BAD_SOURCE_DATE_EPOCH',
    });
  }
  return Number(value);
}
