// Registry references as `brl container push --registry` takes them: HOST[:PORT]/REPO[:TAG].
import { BrlError, ExitCode } from '../core/errors.ts';

export interface RegistryTarget {
  /** `host[:port]` as written. */
  registry: string;
  repository: string;
  /** Absent when the reference names none (the image's own version is used). */
  tag?: string;
}

const repositoryPattern = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const tagPattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function parseRegistryTarget(text: string): RegistryTarget {
  const bad = (why: string): BrlError =>
    new BrlError(`registry reference "${text}" ${why}`, {
      hint: 'write HOST:PORT/REPOSITORY or HOST:PORT/REPOSITORY:TAG, e.g. 127.0.0.1:5000/brl/admin:0.1.0',
      exitCode: ExitCode.usage,
      code: 'BAD_REGISTRY_REFERENCE',
    });
  if (text.includes('@')) throw bad('names a digest; push takes a tag (the digest is the result)');
  const slash = text.indexOf('/');
  if (slash <= 0) throw bad('has no registry host before the repository');
  const registry = text.slice(0, slash);
  // As Docker reads references: a first component without a dot or port (and not localhost) is a repository path.
  if (!registry.includes('.') && !registry.includes(':') && registry !== 'localhost') throw bad(`starts with "${registry}", which is not a registry host (a host has a dot or a port, or is localhost)`);
  let repository = text.slice(slash + 1);
  let tag: string | undefined;
  const lastSegment = repository.split('/').at(-1) ?? '';
  const colon = lastSegment.lastIndexOf(':');
  if (colon >= 0) {
    tag = lastSegment.slice(colon + 1);
    repository = repository.slice(0, repository.length - lastSegment.length + colon);
    if (!tagPattern.test(tag)) throw bad(`has an invalid tag "${tag}" (letters, digits, _ . -; at most 128)`);
  }
  if (!/^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9a-fA-F:]+\](?::\d{1,5})?$/.test(registry)) throw bad(`has an invalid registry host "${registry}"`);
  if (!repositoryPattern.test(repository)) throw bad(`has an invalid repository "${repository}" (lower-case path components)`);
  return { registry, repository, ...(tag === undefined ? {} : { tag }) };
}

/**
 * Loopback registries speak plain HTTP (as Docker and containerd assume); any other speaks HTTPS.
 * Docker Hub's API is served at registry-1.docker.io, not at the docker.io of its references.
 */
export function registryBaseUrl(registry: string, plainHttp = false): string {
  if (registry === 'docker.io') return 'https://registry-1.docker.io';
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host === '::1' || /^127\./.test(host);
  return `${plainHttp || loopback ? 'http' : 'https'}://${registry}`;
}
