// `brl container push`: an image from an OCI layout to a registry, blobs before the manifest, the
// result pinned by the manifest digest the registry serves back.
import { blobPath, readLayoutImage } from './layout.ts';
import { registryBaseUrl, type RegistryTarget } from './reference.ts';
import { RegistryClient } from './registry.ts';

export interface PushOptions {
  /** Speak HTTP to a registry that is not on loopback. */
  plainHttp?: boolean;
  /** The layout's image tag to push; default its only image. */
  layoutTag?: string;
  log?: (line: string) => void;
}

export interface PushedBlob {
  digest: string;
  size: number;
  /** False when the registry already had it. */
  uploaded: boolean;
}

export interface PushResult {
  registry: string;
  repository: string;
  tag: string;
  digest: string;
  /** `HOST/REPO@sha256:…`: what a variant's defaults pin. */
  reference: string;
  taggedReference: string;
  blobs: PushedBlob[];
  bytesUploaded: number;
  seconds: number;
}

export async function pushImage(layoutDir: string, target: RegistryTarget, options: PushOptions = {}): Promise<PushResult> {
  const started = performance.now();
  const image = await readLayoutImage(layoutDir, options.layoutTag);
  const tag = target.tag ?? image.tag;
  if (tag === undefined) throw new Error(`internal: ${layoutDir} names no tag and none was given`);
  const baseUrl = registryBaseUrl(target.registry, options.plainHttp);
  const client = new RegistryClient({ baseUrl, registry: target.registry, repository: target.repository });
  try {
    await client.ping();
    const blobs: PushedBlob[] = [];
    for (const descriptor of [...image.parsed.layers, image.parsed.config]) {
      const present = await client.hasBlob(descriptor);
      if (!present) {
        options.log?.(`uploading ${descriptor.digest} (${descriptor.size} bytes)`);
        await client.uploadBlob(descriptor, blobPath(layoutDir, descriptor.digest));
      }
      blobs.push({ digest: descriptor.digest, size: descriptor.size, uploaded: !present });
    }
    const digest = await client.putManifest(tag, image.manifest.mediaType, image.manifestBytes);
    await client.getManifest(digest, image.manifest.mediaType);
    return {
      registry: target.registry,
      repository: target.repository,
      tag,
      digest,
      reference: `${target.registry}/${target.repository}@${digest}`,
      taggedReference: `${target.registry}/${target.repository}:${tag}`,
      blobs,
      bytesUploaded: blobs.filter((blob) => blob.uploaded).reduce((sum, blob) => sum + blob.size, 0),
      seconds: Math.round((performance.now() - started) / 100) / 10,
    };
  } finally {
    await client.close();
  }
}
