// /etc/updog.toml and /usr/lib/os-release of a host, read with errors that name file and key.
import { readFile } from 'node:fs/promises';
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';
import { parseOsRelease } from '../core/os-release.ts';
import { loadToml, readBoolean, readString, readStringArray, rejectUnknownKeys, tomlKeyError } from '../core/toml.ts';
import { tryParseVersion } from '../update-metadata/version.ts';
import { hostPaths } from './paths.ts';

export interface UpdogConfig {
  metadataBaseUrl: string;
  targetsBaseUrl: string;
  seed: number;
  /** `"latest"` or a version (optional leading `v`). */
  versionLock: string;
  ignoreWaves: boolean;
  httpsProxy: string | undefined;
  noProxy: string[];
}

export async function loadUpdogConfig(root: string): Promise<UpdogConfig> {
  const path = hostPaths(root).config;
  const doc = await loadToml(path);
  const table = doc.data;
  rejectUnknownKeys(doc, table, ['metadata_base_url', 'targets_base_url', 'seed', 'version_lock', 'ignore_waves', 'https_proxy', 'no_proxy']);
  const required = (key: string): string => {
    const value = readString(doc, table, key);
    if (value === undefined || value === '') throw tomlKeyError(doc, key, 'is required');
    if (!/^https?:\/\//.test(value)) throw tomlKeyError(doc, key, `must be an http(s) URL, got ${JSON.stringify(value)}`);
    return value;
  };
  const seed = table.seed;
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) {
    throw tomlKeyError(doc, 'seed', `must be an unsigned 32-bit integer, got ${JSON.stringify(seed)}`);
  }
  const versionLock = readString(doc, table, 'version_lock') ?? 'latest';
  if (versionLock !== 'latest' && !tryParseVersion(versionLock.replace(/^v/, ''))) {
    throw tomlKeyError(doc, 'version_lock', `must be "latest" or a version such as "1.26.1", got ${JSON.stringify(versionLock)}`);
  }
  const httpsProxy = readString(doc, table, 'https_proxy');
  return {
    metadataBaseUrl: required('metadata_base_url'),
    targetsBaseUrl: required('targets_base_url'),
    seed,
    versionLock,
    ignoreWaves: readBoolean(doc, table, 'ignore_waves') ?? false,
    httpsProxy: httpsProxy === '' ? undefined : httpsProxy,
    noProxy: readStringArray(doc, table, 'no_proxy') ?? [],
  };
}

export interface OsRelease {
  variantId: string;
  versionId: string;
  buildId: string | undefined;
  prettyName: string | undefined;
}

export async function loadOsRelease(root: string): Promise<OsRelease> {
  const path = hostPaths(root).osRelease;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') {
      throw new BrlError(`${path} does not exist`, { hint: 'pass the host\'s root directory with --root', exitCode: ExitCode.notFound, code: 'NO_OS_RELEASE' });
    }
    throw error;
  }
  const fields = parseOsRelease(text);
  const need = (key: string): string => {
    const value = fields[key];
    if (value === undefined || value === '') {
      throw new BrlError(`${path}: ${key} is missing`, { exitCode: ExitCode.badInput, code: 'BAD_OS_RELEASE' });
    }
    return value;
  };
  const versionId = need('VERSION_ID');
  if (!tryParseVersion(versionId)) {
    throw new BrlError(`${path}: VERSION_ID ${JSON.stringify(versionId)} is not a semantic version`, { exitCode: ExitCode.badInput, code: 'BAD_OS_RELEASE' });
  }
  return { variantId: need('VARIANT_ID'), versionId, buildId: fields.BUILD_ID, prettyName: fields.PRETTY_NAME };
}

/** The updater's architecture: a property of the build running it (x86_64 or aarch64). */
export function updaterArch(): string {
  const arch = ({ x64: 'x86_64', arm64: 'aarch64' } as Record<string, string>)[process.arch];
  if (arch === undefined) {
    throw new BrlError(`updog does not support the ${process.arch} architecture`, { exitCode: ExitCode.failure, code: 'UNSUPPORTED_ARCH' });
  }
  return arch;
}
