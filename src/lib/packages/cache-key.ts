// The content-addressed build cache key: what a package's RPMs depend on, hashed.
import { createHash } from 'node:crypto';
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';
import { hashFile } from '../core/hash.ts';
import { FileDigestMemo } from './digest-memo.ts';
import { brlInstallDir } from '../core/paths.ts';
import { externalFilesFor } from './arches.ts';
import type { PackageDefinition } from './manifest.ts';
import { distTagForm, packageSourceDateEpoch, type BuildArch } from './macros.ts';

/** Everything a build's output depends on. Two builds with equal inputs produce the same RPMs. */
export interface CacheInputs {
  brlVersion: string;
  arch: BuildArch;
  /** rpmbuild and compiler identity on this host. */
  toolchain: string;
  /** sha256 of the macro file brl gives rpmbuild. */
  macros: string;
  /**
   * The time stamps brl puts into every RPM: SOURCE_DATE_EPOCH (build time, clamped mtimes) and the
   * form of the dist tag, which is made from this key. Nothing else of time or of the commit reaches
   * a package, so a cache hit is byte for byte what a rebuild would make.
   */
  stamp: { sourceDateEpoch: number; dist: string };
  /** sha256 of the spec. */
  spec: string;
  /** sha256 of package.toml ('' when the package has none). */
  manifest: string;
  /** Files beside the spec: relative path → sha256. */
  localSources: Record<string, string>;
  /** External files: file name → pinned sha512 (the fetch step verifies the bytes against it). */
  externalFiles: Record<string, string>;
  /** Every package installed in the sysroot (the build-dependency closure) → its RPM file names → sha256. */
  buildDependencies: Record<string, Record<string, string>>;
  /**
   * Source groups: project-relative directory → sha256 of its tree listing. Absent when the
   * package has none, so the keys of packages without source groups are what they always were.
   */
  sourceGroups?: Record<string, string>;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** JSON with object keys sorted at every level, so equal inputs always hash the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function cacheKey(inputs: CacheInputs): string {
  return sha256Hex(canonicalJson(inputs));
}

/** Names of the inputs that differ, e.g. `spec`, `localSources: hello-1.0.tar.gz`, `buildDependencies: release`. */
export function changedInputs(previous: CacheInputs, current: CacheInputs): string[] {
  const changes: string[] = [];
  for (const field of Object.keys(current) as Array<keyof CacheInputs>) {
    const before = previous[field];
    const after = current[field];
    if (canonicalJson(before) === canonicalJson(after)) continue;
    if (typeof after === 'object' && after !== null && typeof before === 'object' && before !== null) {
      const names = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
      const differing = names.filter(
        (name) => canonicalJson((before as Record<string, unknown>)[name]) !== canonicalJson((after as Record<string, unknown>)[name]),
      );
      changes.push(`${field}: ${differing.join(', ')}`);
    } else {
      changes.push(field);
    }
  }
  return changes;
}

let cachedVersion: string | undefined;

/** brl's own version, from its package.json. */
export async function brlVersion(): Promise<string> {
  cachedVersion ??= (JSON.parse(await readFile(join(brlInstallDir, 'package.json'), 'utf8')) as { version: string }).version;
  return cachedVersion;
}

/**
 * The files beside the spec that the build copies into SOURCES: everything in the package
 * directory except the spec, package.toml, dotfiles and copies of external files (which are
 * pinned by sha512 instead). Relative paths with `/`, sorted.
 */
export async function listLocalSources(definition: PackageDefinition): Promise<string[]> {
  const excluded = new Set([`${definition.name}.spec`, 'package.toml', ...definition.externalFiles.map((file) => file.fileName)]);
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const path = join(dir, entry.name);
      const rel = relative(definition.dir, path).split(sep).join('/');
      if (excluded.has(rel)) continue;
      // Symlinks are followed: the build sees (and the key hashes) what they point at.
      const stats = entry.isSymbolicLink() ? await stat(path) : entry;
      if (stats.isDirectory()) await walk(path);
      else if (stats.isFile()) found.push(rel);
    }
  };
  await walk(definition.dir);
  return found.sort();
}

/**
 * sha256 over a source group's tree exactly as the build sees it through a read-only bind:
 * every entry's relative path and kind, a regular file's executable bit and sha256, a symlink's
 * target text (not followed: a link leaving the group shows nothing in the sandbox either).
 * Dotfiles count too, since the build can read them.
 */
export async function sourceGroupDigest(dir: string, memo: FileDigestMemo = FileDigestMemo.empty()): Promise<string> {
  const lines: string[] = [];
  const walk = async (current: string): Promise<void> => {
    const entries = (await readdir(current, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = join(current, entry.name);
      const rel = relative(dir, path).split(sep).join('/');
      if (entry.isDirectory()) {
        lines.push(`d ${rel}`);
        await walk(path);
      } else if (entry.isSymbolicLink()) {
        lines.push(`l ${rel} ${await readlink(path)}`);
      } else if (entry.isFile()) {
        const executable = ((await stat(path)).mode & 0o111) !== 0;
        lines.push(`${executable ? 'x' : 'f'} ${rel} ${await memo.sha256(path)}`);
      }
    }
  };
  await walk(dir);
  return sha256Hex(lines.join('\n'));
}

/** Digests of a package's source groups, or undefined when it has none. */
export async function collectSourceGroups(
  definition: PackageDefinition,
  projectDir: string,
  memo: FileDigestMemo = FileDigestMemo.empty(),
): Promise<Record<string, string> | undefined> {
  const groups = definition.sourceGroups ?? [];
  if (groups.length === 0) return undefined;
  const digests: Record<string, string> = {};
  for (const group of groups) {
    const dir = join(projectDir, group);
    const stats = await stat(dir).catch((error: unknown) => {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw error;
    });
    if (stats === undefined || !stats.isDirectory()) {
      throw new BrlError(`${definition.manifestPath}: source-groups: "${group}" is not a directory in ${projectDir}`, {
        hint: stats === undefined && group.startsWith('node_modules/') ? 'run npm ci to install the npm dependencies' : 'list directories of the project, relative to its root',
        exitCode: ExitCode.notFound,
        code: 'MISSING_SOURCE_GROUP',
      });
    }
    digests[group] = await sourceGroupDigest(dir, memo);
  }
  return digests;
}

export interface InputContext {
  arch: BuildArch;
  toolchain: string;
  macroFile: string;
  /** RPM hashes of every package in the build-dependency closure, from their build records. */
  dependencyRpms: Record<string, Record<string, string>>;
  /** Remembered file digests; source groups can hold thousands of files. */
  digests?: FileDigestMemo;
}

export async function collectInputs(definition: PackageDefinition, context: InputContext): Promise<CacheInputs> {
  // `<project>/packages-specs/<name>`: source groups are relative to the project.
  const sourceGroups = await collectSourceGroups(definition, resolve(definition.dir, '..', '..'), context.digests);
  const localSources: Record<string, string> = {};
  for (const rel of await listLocalSources(definition)) localSources[rel] = (await hashFile(join(definition.dir, rel))).hex;
  const manifest = await readFile(definition.manifestPath).catch(() => undefined);
  return {
    brlVersion: await brlVersion(),
    arch: context.arch,
    toolchain: context.toolchain,
    macros: sha256Hex(context.macroFile),
    stamp: { sourceDateEpoch: packageSourceDateEpoch, dist: distTagForm },
    spec: (await hashFile(definition.specPath)).hex,
    manifest: manifest === undefined ? '' : sha256Hex(manifest),
    localSources,
    externalFiles: Object.fromEntries(externalFilesFor(definition, context.arch).map((file) => [file.fileName, file.sha512])),
    buildDependencies: context.dependencyRpms,
    ...(sourceGroups === undefined ? {} : { sourceGroups }),
  };
}
