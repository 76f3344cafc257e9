// OCI image layouts on disk (image-spec `image-layout.md`): oci-layout, index.json, blobs/sha256/<hex>.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BrlError, ExitCode, fileError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/fs.ts';
import { hashFile } from '../core/hash.ts';
import { digestPattern, jsonBytes, mediaTypes, refNameAnnotation, sha256Digest, type Descriptor, type ImageIndex, type ImageManifest } from './models.ts';

export const layoutFileContent = '{"imageLayoutVersion":"1.0.0"}';

export function blobPath(layoutDir: string, digest: string): string {
  const [algorithm, hex] = digest.split(':');
  return join(layoutDir, 'blobs', algorithm ?? 'sha256', hex ?? '');
}

/** Stores `bytes` as a blob of the layout and returns its descriptor. */
export async function writeBlob(layoutDir: string, mediaType: string, bytes: Buffer): Promise<Descriptor> {
  const descriptor: Descriptor = { mediaType, digest: sha256Digest(bytes), size: bytes.length };
  await writeFileAtomic(blobPath(layoutDir, descriptor.digest), bytes);
  return descriptor;
}

/** index.json and oci-layout for one image manifest, named by `tag`. */
export async function writeIndex(layoutDir: string, manifest: Descriptor, tag: string): Promise<void> {
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: mediaTypes.index,
    manifests: [{ mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, annotations: { [refNameAnnotation]: tag } }],
  };
  await writeFileAtomic(join(layoutDir, 'index.json'), jsonBytes(index));
  await writeFileAtomic(join(layoutDir, 'oci-layout'), layoutFileContent);
}

/** A fresh temp directory beside `finalDir` to build a layout in. */
export async function makeStagingLayout(finalDir: string): Promise<string> {
  const dir = join(dirname(finalDir), `.${basename(finalDir)}.${randomBytes(6).toString('hex')}.tmp`);
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  return dir;
}

/** Puts a finished layout at `finalDir`: the old one moves aside first and goes only after the new one is in place. */
export async function replaceLayout(stagingDir: string, finalDir: string): Promise<void> {
  const aside = `${stagingDir}.old`;
  const hadOld = existsSync(finalDir);
  if (hadOld) await rename(finalDir, aside);
  await rename(stagingDir, finalDir);
  if (hadOld) await rm(aside, { recursive: true, force: true });
}

export interface LayoutImage {
  layoutDir: string;
  tag: string | undefined;
  manifest: Descriptor;
  manifestBytes: Buffer;
  parsed: ImageManifest;
}

/**
 * The image of a layout's index.json (the one named `tag`, or its only one), with every blob it
 * references checked against its descriptor's size and digest.
 */
export async function readLayoutImage(layoutDir: string, tag?: string): Promise<LayoutImage> {
  const indexPath = join(layoutDir, 'index.json');
  let index: ImageIndex;
  try {
    index = JSON.parse(await readFile(indexPath, 'utf8')) as ImageIndex;
  } catch (error) {
    throw fileError(error, indexPath, { what: 'OCI layout index', hint: 'build the image first (brl container build NAME)' })
      ?? new BrlError(`${indexPath} is not JSON: ${(error as Error).message}`, { exitCode: ExitCode.badInput, code: 'BAD_OCI_LAYOUT' });
  }
  const images = (index.manifests ?? []).filter((descriptor) => descriptor.mediaType === mediaTypes.manifest);
  const chosen = tag === undefined ? (images.length === 1 ? images[0] : undefined) : images.find((descriptor) => descriptor.annotations?.[refNameAnnotation] === tag);
  if (chosen === undefined) {
    const names = images.map((descriptor) => descriptor.annotations?.[refNameAnnotation] ?? descriptor.digest);
    throw new BrlError(`${indexPath} has ${tag === undefined ? `${images.length} image manifests, not one` : `no image tagged ${tag}`} (it has: ${names.join(', ') || 'none'})`, {
      exitCode: ExitCode.notFound,
      code: 'OCI_IMAGE_NOT_FOUND',
    });
  }
  const manifestBytes = await readVerifiedBlob(layoutDir, chosen);
  const parsed = JSON.parse(manifestBytes.toString('utf8')) as ImageManifest;
  for (const descriptor of [parsed.config, ...parsed.layers]) await verifyBlob(layoutDir, descriptor);
  return { layoutDir, tag: chosen.annotations?.[refNameAnnotation], manifest: chosen, manifestBytes, parsed };
}

async function readVerifiedBlob(layoutDir: string, descriptor: Descriptor): Promise<Buffer> {
  checkDigestForm(descriptor.digest);
  const path = blobPath(layoutDir, descriptor.digest);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw fileError(error, path, { what: 'blob' }) ?? error;
  }
  const actual = sha256Digest(bytes);
  if (actual !== descriptor.digest || bytes.length !== descriptor.size) throw blobMismatch(path, descriptor, actual, bytes.length);
  return bytes;
}

/** Hashes a blob file (streamed) and compares it with its descriptor. */
export async function verifyBlob(layoutDir: string, descriptor: Descriptor): Promise<void> {
  checkDigestForm(descriptor.digest);
  const path = blobPath(layoutDir, descriptor.digest);
  let digest;
  try {
    digest = await hashFile(path, 'sha256');
  } catch (error) {
    throw fileError(error, path, { what: 'blob' }) ?? error;
  }
  if (`sha256:${digest.hex}` !== descriptor.digest || digest.bytes !== descriptor.size) throw blobMismatch(path, descriptor, `sha256:${digest.hex}`, digest.bytes);
}

function checkDigestForm(digest: string): void {
  if (!digestPattern.test(digest)) throw new BrlError(`descriptor digest "${digest}" is not sha256:<64 hex>`, { exitCode: ExitCode.badInput, code: 'BAD_OCI_LAYOUT' });
}

function blobMismatch(path: string, descriptor: Descriptor, actual: string, size: number): BrlError {
  return new BrlError(`${path} does not match its descriptor: expected ${descriptor.digest} (${descriptor.size} bytes), found ${actual} (${size} bytes)`, {
    hint: 'the layout was changed after it was built: build it again',
    exitCode: ExitCode.verifyFailed,
    code: 'OCI_BLOB_MISMATCH',
  });
}
