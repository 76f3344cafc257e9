// A host-container image definition: host-containers/<name>/image.toml, its [debian] roots and their debs.lock.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { loadToml, readInteger, readString, readStringArray, readTable, readTableArray, rejectUnknownKeys, tomlKeyError, type TomlDocument } from '../core/toml.ts';
import { inputsDigest, lockFileName, parseLock } from '../debian/lock-file.ts';
import { parseDebianTable, type PackageDebs } from '../debian/package-debs.ts';

export const containersDirName = 'host-containers';
export const imageManifestName = 'image.toml';

/** The image's run configuration (OCI image config `config`). */
export interface ContainerRunConfig {
  entrypoint: string[];
  cmd: string[];
  env: string[];
  user: string;
  workingDir: string;
  labels: Record<string, string>;
}

/**
 * A file brl adds on top of the debs. Its bytes come from exactly one of: a file beside image.toml
 * (`source`), `text`, or a file the debs ship (`from`, e.g. what a maintainer script would copy).
 */
export interface AddedFile {
  /** Absolute path in the image. */
  path: string;
  mode: number;
  /** Absolute path on the build machine. */
  source?: string;
  text?: string;
  /** Absolute path in the image. */
  from?: string;
}

export interface AddedLink {
  path: string;
  target: string;
}

export interface ContainerImageDefinition {
  name: string;
  dir: string;
  manifestPath: string;
  /** The tag the layout names the image by, and the default tag of a push. */
  version: string;
  debian: PackageDebs;
  /** Subtrees (and `*` globs within one path segment) of the debs left out of the image. */
  dropPaths: string[];
  files: AddedFile[];
  links: AddedLink[];
  config: ContainerRunConfig;
}

const topLevelKeys = ['version', 'debian', 'drop-paths', 'files', 'links', 'config'];
const configKeys = ['entrypoint', 'cmd', 'env', 'user', 'working-dir', 'labels'];
const fileKeys = ['path', 'source', 'text', 'from', 'mode'];
const linkKeys = ['path', 'target'];

export async function listContainerNames(projectDir: string): Promise<string[]> {
  const root = join(projectDir, containersDirName);
  if (!existsSync(root)) return [];
  const entries = await readdir(root, { withFileTypes: true });
  return entries.filter((entry) => entry.isDirectory() && existsSync(join(root, entry.name, imageManifestName))).map((entry) => entry.name).sort();
}

export function hasContainerImage(projectDir: string, name: string): boolean {
  return existsSync(join(projectDir, containersDirName, name, imageManifestName));
}

export interface LoadContainerOptions {
  /** Load an image whose debs.lock is missing or stale (for `brl debs lock`, which writes it). */
  allowStaleLock?: boolean;
}

export async function loadContainerImage(projectDir: string, name: string, options: LoadContainerOptions = {}): Promise<ContainerImageDefinition> {
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(name) || !hasContainerImage(projectDir, name)) {
    const known = await listContainerNames(projectDir);
    throw new BrlError(`unknown host-container image "${name}": ${join(projectDir, containersDirName, name, imageManifestName)} does not exist`, {
      hint: known.length > 0 ? `known images: ${known.join(', ')}` : `no images in ${join(projectDir, containersDirName)}`,
      exitCode: ExitCode.notFound,
      code: 'UNKNOWN_CONTAINER_IMAGE',
    });
  }
  const dir = join(projectDir, containersDirName, name);
  const doc = await loadToml(join(dir, imageManifestName));
  const definition = parseImageManifest(doc, name, dir);
  if (definition.debian.lock === undefined) {
    const lockPath = definition.debian.lockPath;
    if (existsSync(lockPath)) {
      const lock = parseLock(lockPath, await readFile(lockPath, 'utf8'));
      if (lock.inputs === inputsDigest(definition.debian.roots) && lock.architecture === definition.debian.roots.architecture) {
        definition.debian.lock = lock;
      } else {
        definition.debian.problem = `${lockPath} was generated from other [debian] roots or excludes than ${doc.path} now lists`;
      }
    }
    if (definition.debian.lock === undefined && options.allowStaleLock !== true) throw staleLock(definition);
  }
  return definition;
}

export function staleLock(definition: ContainerImageDefinition): BrlError {
  return new BrlError(`host-container image ${definition.name}: ${definition.debian.problem ?? 'no debs.lock'}`, {
    hint: `run \`brl debs lock ${definition.name}\` and commit host-containers/${definition.name}/${lockFileName}`,
    exitCode: ExitCode.badInput,
    code: 'DEB_LOCK_STALE',
  });
}

export function parseImageManifest(doc: TomlDocument, name: string, dir: string): ContainerImageDefinition {
  const data = doc.data;
  rejectUnknownKeys(doc, data, topLevelKeys);
  const version = readString(doc, data, 'version');
  if (version === undefined || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(version)) {
    throw tomlKeyError(doc, 'version', 'is required and must be a valid OCI tag (letters, digits, _ . -; at most 128)');
  }
  const roots = parseDebianTable(doc);
  if (roots === undefined) throw tomlKeyError(doc, 'debian', 'is required: the Debian packages the image is made of');
  const lockPath = join(dir, lockFileName);

  const dropPaths = readStringArray(doc, data, 'drop-paths') ?? [];
  dropPaths.forEach((path, index) => imagePath(doc, `drop-paths[${index}]`, path));

  const files = (readTableArray(doc, data, 'files') ?? []).map((table, index): AddedFile => {
    const prefix = `files[${index}].`;
    rejectUnknownKeys(doc, table, fileKeys, prefix);
    const path = imagePath(doc, `${prefix}path`, readString(doc, table, 'path', prefix));
    const source = readString(doc, table, 'source', prefix);
    const text = readString(doc, table, 'text', prefix);
    const from = table.from === undefined ? undefined : imagePath(doc, `${prefix}from`, readString(doc, table, 'from', prefix));
    if ([source, text, from].filter((value) => value !== undefined).length !== 1) {
      throw tomlKeyError(doc, `${prefix}path`, 'give exactly one of source (a file beside image.toml), text, or from (a file the debs ship)');
    }
    const mode = readInteger(doc, table, 'mode', prefix) ?? 0o644;
    if (mode < 0 || mode > 0o7777) throw tomlKeyError(doc, `${prefix}mode`, 'must be a file mode such as 0o755');
    if (text !== undefined) return { path, mode, text };
    if (from !== undefined) return { path, mode, from };
    if (source === undefined) throw tomlKeyError(doc, `${prefix}source`, 'is required');
    const absolute = resolve(dir, source);
    const inside = relative(dir, absolute);
    if (inside === '' || inside.startsWith(`..${sep}`) || inside === '..') throw tomlKeyError(doc, `${prefix}source`, `"${source}" must name a file inside ${dir}`);
    return { path, mode, source: absolute };
  });

  const links = (readTableArray(doc, data, 'links') ?? []).map((table, index): AddedLink => {
    const prefix = `links[${index}].`;
    rejectUnknownKeys(doc, table, linkKeys, prefix);
    const target = readString(doc, table, 'target', prefix);
    if (target === undefined || target === '') throw tomlKeyError(doc, `${prefix}target`, 'is required');
    return { path: imagePath(doc, `${prefix}path`, readString(doc, table, 'path', prefix)), target };
  });

  const configTable = readTable(doc, data, 'config') ?? {};
  rejectUnknownKeys(doc, configTable, configKeys, 'config.');
  const labelsTable = readTable(doc, configTable, 'labels', 'config.') ?? {};
  const labels: Record<string, string> = {};
  for (const key of Object.keys(labelsTable).sort()) {
    const value = readString(doc, labelsTable, key, 'config.labels.');
    if (value !== undefined) labels[key] = value;
  }
  const env = readStringArray(doc, configTable, 'env', 'config.') ?? [];
  env.forEach((entry, index) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(entry)) throw tomlKeyError(doc, `config.env`, `entry ${index} "${entry}" must be NAME=value`);
  });
  const config: ContainerRunConfig = {
    entrypoint: readStringArray(doc, configTable, 'entrypoint', 'config.') ?? [],
    cmd: readStringArray(doc, configTable, 'cmd', 'config.') ?? [],
    env,
    user: readString(doc, configTable, 'user', 'config.') ?? '0:0',
    workingDir: readString(doc, configTable, 'working-dir', 'config.') ?? '/',
    labels,
  };
  if (config.entrypoint.length === 0 && config.cmd.length === 0) throw tomlKeyError(doc, 'config', 'needs an entrypoint or a cmd: what the container runs');
  return { name, dir, manifestPath: doc.path, version, debian: { roots, lockPath }, dropPaths, files, links, config };
}

/** An absolute, normalized path in the image ("/etc/passwd"): no `.`/`..` segments, no trailing slash. */
function imagePath(doc: TomlDocument, key: string, path: string | undefined): string {
  if (path === undefined) throw tomlKeyError(doc, key, 'is required');
  const segments = path.split('/').slice(1);
  if (!path.startsWith('/') || segments.length === 0 || segments.some((segment) => segment === '' || segment === '.' || segment === '..')) {
    throw tomlKeyError(doc, key, `"${path}" must be an absolute path in the image without . or .. segments or a trailing /`);
  }
  return path;
}
