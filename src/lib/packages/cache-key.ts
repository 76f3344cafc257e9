// The content-addressed build cache key: what a package's RPMs depend on, hashed.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { brlInstallDir } from '../core/paths.ts';
import type { PackageDefinition } from './manifest.ts';
import type { BuildArch } from './macros.ts';

/** Everything a build's output depends on. Two builds with equal inputs produce the same RPMs. */
export interface CacheInputs {
  brlVersion: string;
  arch: BuildArch;
  /** rpmbuild and compiler identity on this host. */
  toolchain: string;
  /** sha256 of the macro file brl gives rpmbuild. */
  macros: string;
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
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
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

export interface InputContext {
  arch: BuildArch;
  toolchain: string;
  macroFile: string;
  /** RPM hashes of every package in the build-dependency closure, from their build records. */
  dependencyRpms: Record<string, Record<string, string>>;
}

export async function collectInputs(definition: PackageDefinition, context: InputContext): Promise<CacheInputs> {
  const localSources: Record<string, string> = {};
  for (const rel of await listLocalSources(definition)) localSources[rel] = await sha256File(join(definition.dir, rel));
  const manifest = await readFile(definition.manifestPath).catch(() => undefined);
  return {
    brlVersion: await brlVersion(),
    arch: context.arch,
    toolchain: context.toolchain,
    macros: sha256Hex(context.macroFile),
    spec: await sha256File(definition.specPath),
    manifest: manifest === undefined ? '' : sha256Hex(manifest),
    localSources,
    externalFiles: Object.fromEntries(definition.externalFiles.map((file) => [file.fileName, file.sha512])),
    buildDependencies: context.dependencyRpms,
  };
}
