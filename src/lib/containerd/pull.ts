// Pull for containerd 1.6, which has no server-side pull: unless the image is already there at
// the digest its reference pins, the manifest is resolved here at the registry (or its mirrors, in
// order, then the registry), every blob streamed into the Content service (digest checked by us
// while it streams and by containerd at commit), the layers unpacked through Snapshots Prepare/Commit and Diff Apply under
// their chain IDs, and the Image recorded last, so a failed pull never leaves an image in use.
import { createHash, randomBytes } from 'node:crypto';
import { BrlError, ExitCode } from '../core/errors.ts';
import type { ImageConfig, ImageIndex, ImageManifest } from '../oci/models.ts';
import { RegistryClient } from '../oci/registry.ts';
import { GrpcStatus, isGrpcStatus, type ContainerdClient, type Descriptor, type Mount } from './client.ts';
import { parseImageReference, type ImageReference } from './reference.ts';
import { registryEndpoints, type RegistryEndpoint, type RegistryHosts } from './registry-hosts.ts';

export const snapshotter = 'overlayfs';

const manifestTypes = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'];
const indexTypes = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];

export interface PulledImage {
  name: string;
  manifestDigest: string;
  config: ImageConfig;
  /** The chain ID of the top layer: the snapshot a container's root is prepared from. */
  chainId: string;
  blobsWritten: number;
}

export interface PullOptions {
  /** Speak HTTP to a registry that is not on loopback. */
  plainHttp?: boolean;
  /** Mirrors tried before the registry, and credentials per host (host-ctr.toml). */
  registryHosts?: RegistryHosts;
  log?: (line: string) => void;
}

/** Chain IDs as the image spec defines them: the first layer's diff ID, then sha256("<parent> <diff ID>"). */
export function chainIds(diffIds: readonly string[]): string[] {
  const chain: string[] = [];
  for (const diffId of diffIds) {
    const parent = chain.at(-1);
    chain.push(parent === undefined ? diffId : `sha256:${createHash('sha256').update(`${parent} ${diffId}`).digest('hex')}`);
  }
  return chain;
}

function goArch(): string {
  return ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch] ?? process.arch;
}

function toContainerd(descriptor: { mediaType: string; digest: string; size: number }): Descriptor {
  return { media_type: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size };
}

/**
 * The image already pulled under `reference`'s name, when the reference pins the digest it was
 * pulled at and its top snapshot is unpacked: a pinned image needs no registry again (a host
 * that reboots while its registry is down still starts its containers).
 */
async function pinnedLocalImage(client: ContainerdClient, reference: ImageReference): Promise<PulledImage | undefined> {
  if (!reference.manifest.startsWith('sha256:')) return undefined;
  let target: Descriptor;
  try {
    target = (await client.call<{ image: { target: Descriptor } }>('images', 'Get', { name: reference.name })).image.target;
  } catch (error) {
    if (isGrpcStatus(error, GrpcStatus.NOT_FOUND)) return undefined;
    throw error;
  }
  if (target.digest !== reference.manifest) return undefined;
  try {
    const manifest = JSON.parse((await client.readContent(target.digest)).toString('utf8')) as ImageManifest;
    const config = JSON.parse((await client.readContent(manifest.config.digest)).toString('utf8')) as ImageConfig;
    const chainId = chainIds(config.rootfs?.diff_ids ?? []).at(-1) ?? '';
    if (chainId !== '' && !(await snapshotExists(client, chainId))) return undefined;
    return { name: reference.name, manifestDigest: target.digest, config, chainId, blobsWritten: 0 };
  } catch (error) {
    // Content the garbage collector took: pull it again.
    if (isGrpcStatus(error, GrpcStatus.NOT_FOUND)) return undefined;
    throw error;
  }
}

export async function pullImage(client: ContainerdClient, source: string, options: PullOptions = {}): Promise<PulledImage> {
  const reference = parseImageReference(source);
  const log = options.log ?? (() => {});
  const local = await pinnedLocalImage(client, reference);
  if (local !== undefined) {
    log(`${source}: already pulled, top layer ${local.chainId}`);
    return local;
  }
  const endpoints = registryEndpoints(reference.registry, options.registryHosts, options.plainHttp);
  // Everything written under the lease is safe from containerd's garbage collector until the
  // image record and the gc labels reference it; a pull that dies leaves only an expiring lease.
  const lease = `host-ctr-pull-${randomBytes(8).toString('hex')}`;
  const expires = new Date(Date.now() + 3_600_000).toISOString();
  await client.call('leases', 'Create', { id: lease, labels: { 'containerd.io/gc.expire': expires } });
  try {
    const failures: { endpoint: RegistryEndpoint; error: BrlError }[] = [];
    for (const endpoint of endpoints) {
      try {
        return await pullFrom(client, endpoint, reference, lease, log);
      } catch (error) {
        // What a registry serves or fails to serve sends the pull on to the next endpoint; containerd's errors do not.
        if (!(error instanceof BrlError)) throw error;
        failures.push({ endpoint, error });
        if (endpoint.mirror) log(`${source}: mirror ${endpoint.baseUrl} failed, trying the next endpoint: ${error.message}`);
      }
    }
    const [only] = failures;
    if (failures.length === 1 && only !== undefined) throw only.error;
    throw new BrlError(`image ${source} was pulled from none of its ${failures.length} endpoints: ${failures.map(({ endpoint, error }) => `${endpoint.mirror ? 'mirror' : 'registry'} ${endpoint.baseUrl}: ${error.message}`).join('; ')}`, {
      hint: 'each endpoint\'s reason is given in order (settings.container-registry.mirrors, then the registry itself)',
      exitCode: failures.some(({ error }) => error.exitCode === ExitCode.verifyFailed) ? ExitCode.verifyFailed : ExitCode.network,
      code: 'PULL_ENDPOINTS_FAILED',
    });
  } finally {
    await client.call('leases', 'Delete', { id: lease }).catch(() => {});
  }
}

async function pullFrom(client: ContainerdClient, endpoint: RegistryEndpoint, reference: ImageReference, lease: string, log: (line: string) => void): Promise<PulledImage> {
  const source = reference.name;
  const registry = new RegistryClient({
    baseUrl: endpoint.baseUrl,
    registry: endpoint.host,
    repository: reference.repository,
    userAgent: 'brl host-ctr',
    ...(endpoint.credential === undefined ? {} : { credential: endpoint.credential }),
  });
  try {
    let resolved = await registry.resolveManifest(reference.manifest, [...manifestTypes, ...indexTypes]);
    if (indexTypes.includes(resolved.mediaType)) {
      const index = JSON.parse(resolved.bytes.toString('utf8')) as { manifests: (ImageIndex['manifests'][number] & { platform?: { os?: string; architecture?: string } })[] };
      const wanted = index.manifests.find((entry) => entry.platform?.os === 'linux' && entry.platform.architecture === goArch());
      if (wanted === undefined) {
        throw new BrlError(`image ${source} has no linux/${goArch()} manifest`, { exitCode: ExitCode.notFound, code: 'IMAGE_PLATFORM_MISSING' });
      }
      resolved = await registry.resolveManifest(wanted.digest, manifestTypes);
    }
    const manifest = JSON.parse(resolved.bytes.toString('utf8')) as ImageManifest;
    log(`${source}: manifest ${resolved.digest}, ${manifest.layers.length} layer(s)`);

    const configBytes = await collect(registry.blobChunks(manifest.config));
    const config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== manifest.layers.length) {
      throw new BrlError(`image ${source}: its config lists ${diffIds.length} diff IDs for ${manifest.layers.length} layers`, { exitCode: ExitCode.badInput, code: 'IMAGE_CONFIG_INVALID' });
    }
    const chain = chainIds(diffIds);
    const chainId = chain.at(-1) ?? '';
    const context = { lease };
    let blobsWritten = 0;
    const store = async (descriptor: Descriptor, chunks: () => AsyncIterable<Buffer>, labels: Record<string, string> = {}): Promise<void> => {
      if (await hasContent(client, descriptor.digest)) {
        if (Object.keys(labels).length > 0) {
          await client.call('content', 'Update', { info: { digest: descriptor.digest, labels }, update_mask: { paths: Object.keys(labels).map((key) => `labels.${key}`) } }, context);
        }
        return;
      }
      // A ref of its own per write: containerd holds a ref locked until it notices a cancelled stream,
      // so a write the failed endpoint left behind must not stop the next endpoint's write of the
      // same blob ("ref ... locked: unavailable"). The abandoned ingest goes with the pull's lease.
      const ref = `host-ctr-${randomBytes(6).toString('hex')}-${descriptor.digest}`;
      if (await client.writeContent(ref, descriptor, chunks(), labels, context)) blobsWritten++;
    };
    for (const layer of manifest.layers) await store(toContainerd(layer), () => registry.blobChunks(layer));
    await unpack(client, manifest.layers.map(toContainerd), diffIds, chain, context);
    // The gc labels tie config → top snapshot and manifest → config and layers, so the image record
    // alone keeps the whole image once the lease is gone.
    await store(toContainerd(manifest.config), () => once(configBytes), chainId === '' ? {} : { [`containerd.io/gc.ref.snapshot.${snapshotter}`]: chainId });
    const manifestLabels: Record<string, string> = { 'containerd.io/gc.ref.content.config': manifest.config.digest };
    manifest.layers.forEach((layer, i) => {
      manifestLabels[`containerd.io/gc.ref.content.l.${i}`] = layer.digest;
    });
    const target: Descriptor = { media_type: resolved.mediaType, digest: resolved.digest, size: resolved.bytes.length };
    await store(target, () => once(resolved.bytes), manifestLabels);

    const image = { name: reference.name, target, labels: {} };
    try {
      await client.call('images', 'Create', { image }, context);
    } catch (error) {
      if (!isGrpcStatus(error, GrpcStatus.ALREADY_EXISTS)) throw error;
      await client.call('images', 'Update', { image }, context);
    }
    log(`${source}: pulled, top layer ${chainId}, ${blobsWritten} blob(s) written`);
    return { name: reference.name, manifestDigest: resolved.digest, config, chainId, blobsWritten };
  } finally {
    await registry.close();
  }
}

async function hasContent(client: ContainerdClient, digest: string): Promise<boolean> {
  try {
    await client.call('content', 'Info', { digest });
    return true;
  } catch (error) {
    if (isGrpcStatus(error, GrpcStatus.NOT_FOUND)) return false;
    throw error;
  }
}

async function snapshotExists(client: ContainerdClient, key: string): Promise<boolean> {
  try {
    await client.call('snapshots', 'Stat', { snapshotter, key });
    return true;
  } catch (error) {
    if (isGrpcStatus(error, GrpcStatus.NOT_FOUND)) return false;
    throw error;
  }
}

/** Each layer not yet unpacked: prepared on its parent, the diff applied, checked against its diff ID, committed as its chain ID. */
async function unpack(client: ContainerdClient, layers: Descriptor[], diffIds: string[], chain: string[], context: { lease: string }): Promise<void> {
  for (const [i, layer] of layers.entries()) {
    const chainId = chain[i] as string;
    if (await snapshotExists(client, chainId)) continue;
    const key = `extract-${randomBytes(6).toString('hex')} ${chainId}`;
    const parent = i === 0 ? '' : (chain[i - 1] as string);
    const prepared = await client.call<{ mounts: Mount[] }>('snapshots', 'Prepare', { snapshotter, key, parent }, context);
    try {
      const applied = await client.call<{ applied: Descriptor }>('diff', 'Apply', { diff: layer, mounts: prepared.mounts }, context);
      if (applied.applied.digest !== diffIds[i]) {
        throw new BrlError(`layer ${layer.digest} unpacks to ${applied.applied.digest}, but the image config names diff ID ${diffIds[i]}`, {
          hint: 'the image is inconsistent: rebuild and push it again',
          exitCode: ExitCode.verifyFailed,
          code: 'LAYER_DIFF_ID_MISMATCH',
        });
      }
      await client.call('snapshots', 'Commit', { snapshotter, name: chainId, key }, context);
    } catch (error) {
      await client.call('snapshots', 'Remove', { snapshotter, key }).catch(() => {});
      if (isGrpcStatus(error, GrpcStatus.ALREADY_EXISTS)) continue;
      throw error;
    }
  }
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}
