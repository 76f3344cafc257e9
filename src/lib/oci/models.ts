// OCI image-spec v1.1 objects brl writes and reads: descriptors, image config, manifest, index.
import { createHash } from 'node:crypto';

export const mediaTypes = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

/** The annotation an OCI layout's index.json names an image (its tag) with. */
export const refNameAnnotation = 'org.opencontainers.image.ref.name';

export interface Descriptor {
  mediaType: string;
  /** `sha256:<64 hex>`. */
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  created: string;
  architecture: string;
  os: 'linux';
  config: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[];
    Cmd?: string[];
    WorkingDir?: string;
    Labels?: Record<string, string>;
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history: { created: string; created_by: string }[];
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: typeof mediaTypes.manifest;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType: typeof mediaTypes.index;
  manifests: Descriptor[];
}

/** The bytes brl stores and pushes for a JSON object: no whitespace, keys in the order the object lists them. */
export function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function describeBytes(mediaType: string, bytes: Uint8Array): Descriptor {
  return { mediaType, digest: sha256Digest(bytes), size: bytes.length };
}

export const digestPattern = /^sha256:[0-9a-f]{64}$/;

/** Go's GOARCH names, which OCI uses, for Debian's architecture names. */
export function ociArchitecture(debianArchitecture: string): string {
  const names: Record<string, string> = { amd64: 'amd64', arm64: 'arm64', armhf: 'arm', i386: '386', ppc64el: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return names[debianArchitecture] ?? debianArchitecture;
}
