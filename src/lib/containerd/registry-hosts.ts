// Where a pull looks for an image: the mirrors configured for its registry (or for `*`), in order,
// then the registry itself; each host with the credentials configured for it.
import { BrlError, ExitCode } from '../core/errors.ts';
import { registryBaseUrl } from '../oci/reference.ts';
import type { RegistryCredential } from '../oci/registry.ts';

export interface RegistryHosts {
  /** Registry (`host[:port]`, or `*` for any without its own entry) → mirror endpoints, tried in order. */
  mirrors: ReadonlyMap<string, readonly string[]>;
  /** Host (`host[:port]`) a request goes to → its credentials. */
  credentials: ReadonlyMap<string, RegistryCredential>;
}

export interface RegistryEndpoint {
  /** Scheme, host and path below which `/v2/` is served (no trailing `/`). */
  baseUrl: string;
  /** Names the endpoint in messages: the mirror's `host[:port]`, or the registry as the reference writes it. */
  host: string;
  mirror: boolean;
  credential?: RegistryCredential;
}

// Docker Hub's references say docker.io, its API answers at registry-1.docker.io: credentials may name either.
const hostAliases: Readonly<Record<string, string>> = { 'docker.io': 'registry-1.docker.io', 'registry-1.docker.io': 'docker.io' };

function credentialFor(hosts: RegistryHosts | undefined, host: string): RegistryCredential | undefined {
  const alias = hostAliases[host];
  return hosts?.credentials.get(host) ?? (alias === undefined ? undefined : hosts?.credentials.get(alias));
}

/**
 * A mirror endpoint as settings write it (containerd's rules): `http://` or `https://`, https when
 * none is written; the path is where the API lives, a trailing `/v2` included or not.
 */
export function mirrorBaseUrl(endpoint: string): URL {
  const withScheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(endpoint) ? endpoint : `https://${endpoint}`;
  const url = URL.canParse(withScheme) ? new URL(withScheme) : undefined;
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '' || url.hash !== '') {
    throw new BrlError(`registry mirror endpoint "${endpoint}" is not an http:// or https:// URL of a registry`, {
      hint: 'write the mirror as http://HOST[:PORT] (plain HTTP) or https://HOST[:PORT][/PATH]',
      exitCode: ExitCode.badInput,
      code: 'BAD_MIRROR_ENDPOINT',
    });
  }
  url.pathname = url.pathname.replace(/\/+$/, '').replace(/\/v2$/, '');
  return url;
}

/** The endpoints a pull from `registry` tries, in order: its mirrors (or `*`'s), then the registry itself. */
export function registryEndpoints(registry: string, hosts?: RegistryHosts, plainHttp = false): RegistryEndpoint[] {
  const mirrors = hosts?.mirrors.get(registry) ?? hosts?.mirrors.get('*') ?? [];
  const endpoints: RegistryEndpoint[] = mirrors.map((endpoint) => {
    const url = mirrorBaseUrl(endpoint);
    const credential = credentialFor(hosts, url.host);
    return { baseUrl: `${url.origin}${url.pathname.replace(/\/$/, '')}`, host: url.host, mirror: true, ...(credential === undefined ? {} : { credential }) };
  });
  const own = registryBaseUrl(registry, plainHttp);
  const credential = credentialFor(hosts, registry);
  endpoints.push({ baseUrl: own, host: registry, mirror: false, ...(credential === undefined ? {} : { credential }) });
  return endpoints;
}
