// Fetch settings: `[fetch]` in brl.toml, then the environment, then command-line overrides.
import { isAbsolute, resolve } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { loadProjectConfig } from '../core/project-config.ts';
import {
  readBoolean,
  readInteger,
  readString,
  readStringArray,
  readTable,
  rejectUnknownKeys,
  tomlKeyError,
  type TomlDocument,
} from '../core/toml.ts';


/** Bottlerocket's public lookaside cache: the default, so existing Bottlerocket pins resolve unchanged. */
export const defaultLookasideCaches: readonly string[] = ['https://cache.bottlerocket.aws'];
export const defaultCacheDirName = '.lookaside';
export const defaultJobs = 8;
const maxJobs = 64;

export interface FetchConfig {
  /** Absolute directory holding `<fileName>/<sha512>/<fileName>`. */
  cacheDir: string;
  /** Mirror base URLs tried in order before upstream. */
  lookasideCaches: string[];
  /** Fetch from the upstream URL when every cache misses (always done for `force-upstream` files). */
  upstreamFallback: boolean;
  /** Downloads in flight at once. */
  jobs: number;
}

/** Values from command-line flags; each one replaces what brl.toml and the environment say. */
export interface FetchConfigOverrides {
  lookasideCaches?: string[];
  upstreamFallback?: boolean;
  cacheDir?: string;
  jobs?: number;
  /** The environment to read; defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
}

const fetchKeys = ['lookaside-caches', 'upstream-fallback', 'cache-dir', 'jobs'];

export async function loadFetchConfig(projectDir: string, overrides: FetchConfigOverrides = {}): Promise<FetchConfig> {
  const doc = await loadProjectConfig(projectDir);
  const fromFile = doc === undefined ? {} : parseFetchSection(doc);
  const fromEnv = readFetchEnvironment(overrides.env ?? process.env);

  const lookasideCaches = overrides.lookasideCaches ?? fromEnv.lookasideCaches ?? fromFile.lookasideCaches ?? [...defaultLookasideCaches];
  for (const base of lookasideCaches) checkCacheUrl(base, 'lookaside cache');
  const jobs = overrides.jobs ?? fromFile.jobs ?? defaultJobs;
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > maxJobs) {
    throw new BrlError(`jobs must be an integer from 1 to ${maxJobs}, got ${jobs}`, {
      exitCode: ExitCode.usage,
      code: 'BAD_JOBS',
    });
  }
  const cacheDir = overrides.cacheDir ?? fromFile.cacheDir ?? defaultCacheDirName;
  return {
    cacheDir: isAbsolute(cacheDir) ? cacheDir : resolve(projectDir, cacheDir),
    lookasideCaches,
    upstreamFallback: overrides.upstreamFallback ?? fromEnv.upstreamFallback ?? fromFile.upstreamFallback ?? false,
    jobs,
  };
}

type PartialConfig = Partial<Omit<FetchConfig, 'cacheDir'>> & { cacheDir?: string };

/** Reads `[fetch]` from a parsed brl.toml; other sections belong to other parts of brl. */
export function parseFetchSection(doc: TomlDocument): PartialConfig {
  const table = readTable(doc, doc.data, 'fetch');
  if (table === undefined) return {};
  const prefix = 'fetch.';
  rejectUnknownKeys(doc, table, fetchKeys, prefix);
  const config: PartialConfig = {};
  const caches = readStringArray(doc, table, 'lookaside-caches', prefix);
  if (caches !== undefined) {
    for (const base of caches) {
      if (!isCacheUrl(base)) throw tomlKeyError(doc, `${prefix}lookaside-caches`, `"${base}" is not an http://, https:// or file:// URL`);
    }
    config.lookasideCaches = caches;
  }
  const fallback = readBoolean(doc, table, 'upstream-fallback', prefix);
  if (fallback !== undefined) config.upstreamFallback = fallback;
  const cacheDir = readString(doc, table, 'cache-dir', prefix);
  if (cacheDir !== undefined) {
    if (cacheDir.trim() === '') throw tomlKeyError(doc, `${prefix}cache-dir`, 'must not be empty');
    config.cacheDir = cacheDir;
  }
  const jobs = readInteger(doc, table, 'jobs', prefix);
  if (jobs !== undefined) {
    if (jobs < 1 || jobs > maxJobs) throw tomlKeyError(doc, `${prefix}jobs`, `must be from 1 to ${maxJobs}, got ${jobs}`);
    config.jobs = jobs;
  }
  return config;
}

/**
 * `BRL_LOOKASIDE_CACHE` (whitespace- or comma-separated, in order; `BUILDSYS_LOOKASIDE_CACHE` is read
 * when it is unset) and `BUILDSYS_UPSTREAM_SOURCE_FALLBACK` (`true` or `false`, as in buildsys).
 */
export function readFetchEnvironment(env: NodeJS.ProcessEnv): Pick<PartialConfig, 'lookasideCaches' | 'upstreamFallback'> {
  const config: Pick<PartialConfig, 'lookasideCaches' | 'upstreamFallback'> = {};
  const cacheVariable = env.BRL_LOOKASIDE_CACHE !== undefined ? 'BRL_LOOKASIDE_CACHE' : 'BUILDSYS_LOOKASIDE_CACHE';
  const caches = env[cacheVariable];
  if (caches !== undefined && caches.trim() !== '') {
    config.lookasideCaches = caches.split(/[\s,]+/).filter(Boolean);
    for (const base of config.lookasideCaches) checkCacheUrl(base, cacheVariable);
  }
  const fallback = env.BUILDSYS_UPSTREAM_SOURCE_FALLBACK;
  if (fallback !== undefined && fallback.trim() !== '') {
    const value = fallback.trim().toLowerCase();
    if (value !== 'true' && value !== 'false') {
      throw new BrlError(`BUILDSYS_UPSTREAM_SOURCE_FALLBACK must be "true" or "false", got "${fallback}"`, {
        exitCode: ExitCode.usage,
        code: 'BAD_ENVIRONMENT',
      });
    }
    config.upstreamFallback = value === 'true';
  }
  return config;
}

function isCacheUrl(value: string): boolean {
  if (!/^(https?|file):\/\//.test(value)) return false;
  return URL.canParse(value);
}

function checkCacheUrl(value: string, where: string): void {
  if (!isCacheUrl(value)) {
    throw new BrlError(`${where}: "${value}" is not an http://, https:// or file:// URL`, {
      hint: 'a lookaside cache is a base URL serving <file>/<sha512>/<file>, e.g. https://cache.bottlerocket.aws',
      exitCode: ExitCode.usage,
      code: 'BAD_LOOKASIDE_CACHE',
    });
  }
}
