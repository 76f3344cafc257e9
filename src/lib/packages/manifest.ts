// Package definitions: `packages-specs/<name>/` holds `<name>.spec` and `package.toml`.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { currentLock, loadPackageDebs, lockedExternalFiles, parseDebianTable, type PackageDebs } from '../debian/package-debs.ts';
import { buildArchOfDebian, debianArchOf, specExclusiveArches } from './arches.ts';
import { buildArches, type BuildArch } from './macros.ts';
import {
  loadToml,
  readBoolean,
  readString,
  readStringArray,
  readTableArray,
  rejectUnknownKeys,
  tomlKeyError,
  type TomlDocument,
  type TomlTable,
} from '../core/toml.ts';

export const packagesDirName = 'packages-specs';

/** Where an external file comes from; every kind is pinned by sha512. */
export type SourceKind = 'url' | 'npm' | 'deb' | 'deb-src';

export interface ExternalFile {
  /** As written: `https://…`, `http://…`, `file://…`, `npm:<name>@<version>`, `deb:<name>=<version>` or `deb-src:<source package>=<version>`. */
  url: string;
  kind: SourceKind;
  /** Lowercase hex SHA-512. */
  sha512: string;
  /** Local file name: `path`, else the URL's last segment (npm/deb: the registry's file name). */
  fileName: string;
  /** Fetch from `url` even when upstream fallback is off (Bottlerocket's `force-upstream`). */
  forceUpstream: boolean;
  /** Only builds for these arches use the file (`arches` of the entry); absent: every arch's build. */
  arches?: BuildArch[];
}

export const hardeningChecks = ['pie', 'relro', 'nx-stack', 'stack-protector'] as const;
export type HardeningCheck = (typeof hardeningChecks)[number];

export interface HardeningException {
  /** Absolute path of the file inside the RPM payload, or a glob ending in `*`. */
  file: string;
  checks: HardeningCheck[];
  reason: string;
}

export interface PackageDefinition {
  name: string;
  dir: string;
  specPath: string;
  manifestPath: string;
  /**
   * The arches the package builds for: `arches` in package.toml, narrowed by the spec's
   * ExclusiveArch. Absent: every arch brl builds for (see `packageArches`).
   */
  arches?: BuildArch[];
  externalFiles: ExternalFile[];
  /** Other packages whose RPMs must be installed in the build sysroot. */
  buildDependencies: string[];
  hardeningExceptions: HardeningException[];
  /**
   * First-party source directories (Bottlerocket's `source-groups`), relative to the project
   * directory: their content is in the cache key and the build sees them read-only under
   * `%{_cross_sourcesdir}/<group>`. Optional, so hand-built definitions may leave it out.
   */
  sourceGroups?: string[];
  /** `[debian]`: the package repackages this Debian closure, pinned in debs.lock (its debs are in `externalFiles`). */
  debian?: PackageDebs;
}

export interface LoadPackageOptions {
  /** Load a package whose debs.lock is missing or stale (for `brl debs lock`, which writes it). */
  allowStaleLock?: boolean;
}

const topLevelKeys = ['arches', 'build-dependencies', 'debian', 'external-files', 'hardening-exceptions', 'source-groups'];
const externalFileKeys = ['url', 'sha512', 'path', 'force-upstream', 'arches'];
const hardeningKeys = ['file', 'checks', 'reason'];

export async function loadPackage(projectDir: string, name: string, options: LoadPackageOptions = {}): Promise<PackageDefinition> {
  const dir = join(projectDir, packagesDirName, name);
  if (!existsSync(dir)) {
    const known = await listPackageNames(projectDir);
    throw new BrlError(`unknown package "${name}"`, {
      hint: known.length > 0 ? `known packages: ${known.join(', ')}` : `no packages in ${join(projectDir, packagesDirName)}`,
      exitCode: ExitCode.notFound,
      code: 'UNKNOWN_PACKAGE',
    });
  }
  const specPath = join(dir, `${name}.spec`);
  if (!existsSync(specPath)) {
    throw new BrlError(`package "${name}" has no spec: ${specPath} does not exist`, {
      exitCode: ExitCode.badInput,
      code: 'MISSING_SPEC',
    });
  }
  const manifestPath = join(dir, 'package.toml');
  const doc = existsSync(manifestPath) ? await loadToml(manifestPath) : { path: manifestPath, text: '', data: {} };
  const definition = narrowToSpec(doc, parsePackageManifest(doc, name, dir, specPath), await readFile(specPath, 'utf8'));
  // A [debian] closure is resolved for each of the package's arches, unless the table names one.
  const roots = parseDebianTable(doc, (definition.arches ?? buildArches).map((arch) => debianArchOf[arch]));
  if (roots === undefined) return definition;
  const debian = await loadPackageDebs(name, dir, roots);
  if (debian.lock === undefined && options.allowStaleLock !== true) currentLock(name, debian);
  const locked = debian.lock === undefined ? [] : lockedExternalFiles(debian.lock).map(({ debianArchitectures, ...file }) => {
    const arches = debianArchitectures.map(buildArchOfDebian).filter((arch) => arch !== undefined);
    return { ...file, arches };
  });
  return { ...definition, externalFiles: [...definition.externalFiles, ...locked], debian };
}

/** The spec's ExclusiveArch narrows the arches; listing in package.toml an arch the spec excludes is a contradiction. */
function narrowToSpec(doc: TomlDocument, definition: PackageDefinition, specText: string): PackageDefinition {
  const exclusive = specExclusiveArches(specText);
  if (exclusive === undefined) return definition;
  if (definition.arches === undefined) return { ...definition, arches: exclusive };
  const excluded = definition.arches.filter((arch) => !exclusive.includes(arch));
  if (excluded.length > 0) {
    throw tomlKeyError(doc, 'arches', `lists ${excluded.join(', ')}, which ExclusiveArch in ${definition.specPath} leaves out (it has ${exclusive.join(', ')})`);
  }
  return definition;
}

export function parsePackageManifest(doc: TomlDocument, name: string, dir: string, specPath: string): PackageDefinition {
  const data = doc.data;
  rejectUnknownKeys(doc, data, topLevelKeys);
  const buildDependencies = readStringArray(doc, data, 'build-dependencies') ?? [];
  const externalFiles = (readTableArray(doc, data, 'external-files') ?? []).map((table, index) => {
    const prefix = `external-files[${index}].`;
    rejectUnknownKeys(doc, table, externalFileKeys, prefix);
    const url = readString(doc, table, 'url', prefix);
    if (url === undefined) throw tomlKeyError(doc, `${prefix}url`, 'is required');
    const sha512 = readString(doc, table, 'sha512', prefix);
    if (sha512 === undefined) throw tomlKeyError(doc, `${prefix}sha512`, 'is required');
    if (!/^[0-9a-f]{128}$/.test(sha512)) throw tomlKeyError(doc, `${prefix}sha512`, 'must be 128 lowercase hex digits');
    const kind = sourceKind(doc, url, `${prefix}url`);
    const path = readString(doc, table, 'path', prefix);
    const fileName = path ?? defaultFileName(doc, url, kind, `${prefix}url`);
    if (fileName === '' || fileName === '.' || fileName === '..' || fileName.includes('/') || fileName.includes('\\')) {
      throw tomlKeyError(doc, `${prefix}path`, `"${fileName}" must be a single file name inside the package directory`);
    }
    const arches = readArches(doc, table, prefix);
    return { url, kind, sha512, fileName, forceUpstream: readBoolean(doc, table, 'force-upstream', prefix) ?? false, ...(arches === undefined ? {} : { arches }) };
  });
  const hardeningExceptions = (readTableArray(doc, data, 'hardening-exceptions') ?? []).map((table, index) => {
    const prefix = `hardening-exceptions[${index}].`;
    rejectUnknownKeys(doc, table, hardeningKeys, prefix);
    const file = readString(doc, table, 'file', prefix);
    if (file === undefined || !file.startsWith('/')) throw tomlKeyError(doc, `${prefix}file`, 'must be an absolute path in the package');
    const reason = readString(doc, table, 'reason', prefix);
    if (reason === undefined || reason.trim() === '') throw tomlKeyError(doc, `${prefix}reason`, 'is required: say why the file may skip the checks');
    const checks = readStringArray(doc, table, 'checks', prefix) ?? [...hardeningChecks];
    for (const check of checks) {
      if (!(hardeningChecks as readonly string[]).includes(check)) {
        throw tomlKeyError(doc, `${prefix}checks`, `unknown check "${check}" (expected: ${hardeningChecks.join(', ')})`);
      }
    }
    return { file, checks: checks as HardeningCheck[], reason };
  });
  const sourceGroups = readSourceGroups(doc);
  const arches = readArches(doc, data, '');
  return { name, dir, specPath, manifestPath: doc.path, ...(arches === undefined ? {} : { arches }), externalFiles, buildDependencies, hardeningExceptions, sourceGroups };
}

/** `arches = ["x86_64", "aarch64"]`: brl's arch names, at least one. */
function readArches(doc: TomlDocument, table: TomlTable, prefix: string): BuildArch[] | undefined {
  const arches = readStringArray(doc, table, 'arches', prefix);
  if (arches === undefined) return undefined;
  if (arches.length === 0) throw tomlKeyError(doc, `${prefix}arches`, `must list at least one of ${buildArches.join(', ')}`);
  for (const arch of arches) {
    if (!(buildArches as readonly string[]).includes(arch)) throw tomlKeyError(doc, `${prefix}arches`, `unknown arch "${arch}" (expected: ${buildArches.join(', ')})`);
  }
  return [...new Set(arches)] as BuildArch[];
}

/** Project-relative directories in normal form (`src/lib`), none inside another; sorted. */
function readSourceGroups(doc: TomlDocument): string[] {
  const groups = readStringArray(doc, doc.data, 'source-groups') ?? [];
  for (const group of groups) {
    const segments = group.split('/');
    if (group === '' || group.startsWith('/') || segments.some((segment) => segment === '' || segment === '.' || segment === '..') || group.includes('\\')) {
      throw tomlKeyError(doc, 'source-groups', `"${group}" must be a directory inside the project, written like "src/lib" (no "..", ".", leading or doubled "/")`);
    }
  }
  const sorted = [...new Set(groups)].sort();
  for (const group of sorted) {
    const outer = sorted.find((other) => other !== group && group.startsWith(`${other}/`));
    if (outer !== undefined) throw tomlKeyError(doc, 'source-groups', `"${group}" is inside "${outer}"; list only "${outer}"`);
  }
  return sorted;
}

function sourceKind(doc: TomlDocument, url: string, key: string): SourceKind {
  if (/^npm:(@[^/@\s]+\/)?[^/@\s]+@[^@\s]+$/.test(url)) return 'npm';
  if (/^deb:[a-z0-9][a-z0-9+.-]*(:[a-z0-9]+)?=[^\s=]+$/.test(url)) return 'deb';
  if (/^deb-src:[a-z0-9][a-z0-9+.-]*=[^\s=]+$/.test(url)) return 'deb-src';
  if (/^(https?|file):\/\/\S+$/.test(url)) return 'url';
  throw tomlKeyError(doc, key, `unsupported source "${url}" (use https://, http://, file://, npm:<name>@<version>, deb:<name>[:<debian arch>]=<version> or deb-src:<source package>=<version>)`);
}

function defaultFileName(doc: TomlDocument, url: string, kind: SourceKind, key: string): string {
  if (kind === 'npm') {
    // npm's tarball naming: `<name without scope>-<version>.tgz`.
    const spec = url.slice('npm:'.length);
    const at = spec.lastIndexOf('@');
    const name = spec.slice(0, at).replace(/^@[^/]+\//, '');
    return `${name}-${spec.slice(at + 1)}.tgz`;
  }
  // A source package has several files (.dsc, orig and Debian tarballs): each entry names its own.
  if (kind === 'deb-src') throw tomlKeyError(doc, key, `"${url}" is a source package of several files; set path to the one this entry pins`);
  if (kind === 'deb') {
    const [qualified, version] = url.slice('deb:'.length).split('=') as [string, string];
    const [name, debianArch] = qualified.split(':') as [string, string | undefined];
    // Debian's pool naming drops the epoch and ends in the arch; without an arch qualifier it is unknown, so ask for `path`.
    return `${name}_${version.replace(/^\d+:/, '')}${debianArch === undefined ? '' : `_${debianArch}`}.deb`;
  }
  const segment = new URL(url).pathname.split('/').filter(Boolean).at(-1);
  if (segment === undefined) throw tomlKeyError(doc, key, `"${url}" has no file name; set path`);
  return decodeURIComponent(segment);
}

export async function listPackageNames(projectDir: string): Promise<string[]> {
  const root = join(projectDir, packagesDirName);
  if (!existsSync(root)) return [];
  const entries = await readdir(root, { withFileTypes: true });
  return entries
    .filter((entry) => entry.isDirectory() && existsSync(join(root, entry.name, `${entry.name}.spec`)))
    .map((entry) => entry.name)
    .sort();
}

export async function loadAllPackages(projectDir: string, options: LoadPackageOptions = {}): Promise<PackageDefinition[]> {
  return Promise.all((await listPackageNames(projectDir)).map((name) => loadPackage(projectDir, name, options)));
}
