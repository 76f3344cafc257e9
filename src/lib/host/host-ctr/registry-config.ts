// host-ctr's registry configuration, /etc/host-containers/host-ctr.toml as the host-ctr-toml
// template renders it from settings.container-registry (upstream's format):
//   [mirrors."<registry>"] endpoints = ["http://…", …]
//   [creds."<host>"] username, password | auth | identitytoken
import { readFile } from 'node:fs/promises';
import { parse } from 'smol-toml';
import type { RegistryHosts } from '../../containerd/registry-hosts.ts';
import { BrlError, ExitCode, errnoCode } from '../../core/errors.ts';
import type { RegistryCredential } from '../../oci/registry.ts';

export const hostCtrToml = '/etc/host-containers/host-ctr.toml';

const credentialFields = ['username', 'password', 'auth', 'identitytoken'] as const;

export function parseRegistryConfig(text: string, path: string): RegistryHosts {
  const bad = (what: string): BrlError => new BrlError(`${path}: ${what}`, {
    hint: 'the file is rendered from settings.container-registry: check those settings (apiclient get settings.container-registry)',
    exitCode: ExitCode.badInput,
    code: 'HOST_CTR_TOML',
  });
  let document: Record<string, unknown>;
  try {
    document = parse(text) as Record<string, unknown>;
  } catch (error) {
    throw bad(`is not TOML: ${(error as Error).message.split('\n')[0]}`);
  }
  const table = (key: string): Record<string, unknown> => {
    const value = document[key] ?? {};
    if (typeof value !== 'object' || Array.isArray(value)) throw bad(`'${key}' must be a table`);
    return value as Record<string, unknown>;
  };
  const mirrors = new Map<string, string[]>();
  for (const [registry, entry] of Object.entries(table('mirrors'))) {
    const endpoints = (entry as { endpoints?: unknown }).endpoints;
    if (!Array.isArray(endpoints) || endpoints.some((endpoint) => typeof endpoint !== 'string')) throw bad(`mirrors."${registry}".endpoints must be a list of URLs`);
    mirrors.set(registry, endpoints as string[]);
  }
  const credentials = new Map<string, RegistryCredential>();
  for (const [host, entry] of Object.entries(table('creds'))) {
    const credential: RegistryCredential = {};
    for (const field of credentialFields) {
      const value = (entry as Record<string, unknown>)[field];
      if (value === undefined) continue;
      if (typeof value !== 'string') throw bad(`creds."${host}".${field} must be a string`);
      credential[field] = value;
    }
    credentials.set(host, credential);
  }
  return { mirrors, credentials };
}

/** The configuration at `path`; a host without the file pulls from each registry itself, anonymously. */
export async function readRegistryConfig(path: string): Promise<RegistryHosts> {
  try {
    return parseRegistryConfig(await readFile(path, 'utf8'), path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { mirrors: new Map(), credentials: new Map() };
    throw error;
  }
}
