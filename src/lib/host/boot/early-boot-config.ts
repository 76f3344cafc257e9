// early-boot-config: user data (TOML with [settings]) from local files, a file or an IMDS-style URL; first boot only.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { parse } from 'smol-toml';
import { errnoCode, fileError } from '../../core/errors.ts';
import { writeFileAtomic } from '../../core/fs.ts';
import { apiCall, ApiStatusError } from '../apiclient/request.ts';
import type { HostPaths } from '../paths.ts';
import { LAUNCH_TX } from './commit-launch.ts';

export interface ProviderResult {
  name: string;
  source: string;
  applied: boolean;
}

export interface EarlyBootConfigResult {
  /** False when the `.ran` marker says a previous boot already did this. */
  ran: boolean;
  providers: ProviderResult[];
}

export class UserDataError extends Error {
  override readonly name = 'UserDataError';
}

/**
 * Reads each source in provider order and PATCHes its `settings` into `bottlerocket-launch`
 * (no commit). `userData` is a path or an `http(s)://` URL (IMDSv2 token first, then IMDSv1).
 */
export async function runEarlyBootConfig(
  paths: HostPaths,
  socketPath: string,
  userData: string | undefined,
): Promise<EarlyBootConfigResult> {
  if (existsSync(paths.earlyBootMarker)) return { ran: false, providers: [] };
  const sources: { name: string; source: string; read: () => Promise<Buffer | undefined> }[] = [];
  const [defaults, local, overrides] = paths.localUserData;
  for (const provider of [defaults, local]) {
    if (provider) sources.push({ name: provider.name, source: provider.path, read: () => readOptional(provider.path) });
  }
  // Only a VM started with user data has this fw_cfg file; read between the local files and the cloud's.
  sources.push({ name: '40-qemu-fw-cfg', source: paths.fwCfgUserData, read: () => readOptional(paths.fwCfgUserData) });
  if (userData !== undefined) {
    const isUrl = /^https?:\/\//.test(userData);
    sources.push({
      name: isUrl ? '40-imds' : '40-user-data-file',
      source: userData,
      read: () => (isUrl ? fetchUserData(userData) : readRequired(userData)),
    });
  }
  if (overrides) sources.push({ name: overrides.name, source: overrides.path, read: () => readOptional(overrides.path) });

  const contents = await Promise.all(sources.map((source) => source.read()));
  const providers: ProviderResult[] = [];
  for (const [index, source] of sources.entries()) {
    const settings = decodeUserData(contents[index], source.source);
    if (settings !== undefined) {
      await apiCall(socketPath, 'PATCH', `/settings?tx=${LAUNCH_TX}`, JSON.stringify(settings)).catch((error: unknown) => {
        // 400 is the API refusing the settings themselves (unknown key, wrong type): the user data is wrong.
        if (error instanceof ApiStatusError && error.status === 400) {
          throw new UserDataError(`user data from ${source.source} was rejected: ${error.body}`);
        }
        throw error;
      });
    }
    providers.push({ name: source.name, source: source.source, applied: settings !== undefined });
  }
  await writeFileAtomic(paths.earlyBootMarker, '');
  return { ran: true, providers };
}

/** Empty input is skipped; gzip is detected by its magic; the `settings` table is what gets applied. */
export function decodeUserData(bytes: Buffer | undefined, source: string): unknown {
  if (bytes === undefined || bytes.length === 0) return undefined;
  const raw = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
  const text = raw.toString('utf8');
  if (text.trim().length === 0) return undefined;
  let document: Record<string, unknown>;
  try {
    document = parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new UserDataError(`user data from ${source} is not TOML: ${(error as Error).message.split('\n')[0]}`);
  }
  if (!('settings' in document)) throw new UserDataError(`TOML data did not contain 'settings' section (${source})`);
  return JSON.parse(JSON.stringify(document.settings)) as unknown;
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

async function readRequired(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') throw new UserDataError(`user data file ${path} does not exist`);
    throw fileError(error, path, { what: 'user data file' }) ?? error;
  }
}

/** IMDS: try a session token (PUT /latest/api/token), then GET the URL; 404 means no user data. */
async function fetchUserData(url: string): Promise<Buffer | undefined> {
  const headers: Record<string, string> = {};
  try {
    const token = await fetch(new URL('/latest/api/token', url), {
      method: 'PUT',
      headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' },
      signal: AbortSignal.timeout(5_000),
    });
    if (token.ok) headers['x-aws-ec2-metadata-token'] = await token.text();
  } catch {
    // IMDSv1-only endpoints and plain web servers have no token API.
  }
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(30_000) });
  if (response.status === 404) return undefined;
  if (!response.ok) throw new UserDataError(`fetching user data from ${url} failed: HTTP ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}
