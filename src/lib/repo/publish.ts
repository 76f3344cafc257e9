// `brl repo publish --s3`: uploads a repository so that clients never see metadata before its files.
import { createReadStream, existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mapLimit } from '../core/concurrency.ts';
import { BrlError, ExitCode } from '../core/errors.ts';
import { hashFile, hashStream } from '../core/hash.ts';
import { findMetadataDirs } from './layout.ts';
import { abortUpload, checkPartSize, defaultPartJobs, defaultPartSizeBytes, listPendingUploads, multipartEtag, PartBufferPool, uploadMultipart } from './s3-multipart.ts';

export interface S3Location {
  bucket: string;
  /** Key prefix without leading or trailing slash ('' for the bucket root). */
  prefix: string;
}

export function parseS3Location(text: string): S3Location {
  const match = /^(?:s3:\/\/)?([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(text);
  if (!match) {
    throw new BrlError(`--s3 ${JSON.stringify(text)} is not BUCKET/PREFIX`, { hint: 'a bucket name is 3 to 63 lowercase letters, digits, dots and hyphens; write e.g. my-updates-bucket/bottlerocket or s3://my-bucket/prefix', exitCode: ExitCode.usage, code: 'BAD_S3_LOCATION' });
  }
  return { bucket: match[1]!, prefix: (match[2] ?? '').replace(/^\/+|\/+$/g, '') };
}

export interface PublishedObject {
  key: string;
  bytes: number;
  status: 'uploaded' | 'unchanged';
  /** For a file uploaded in parts: how many, how many were sent now and how many a resumed upload already held. */
  parts?: { total: number; uploaded: number; reused: number };
}

export interface PublishResult {
  bucket: string;
  prefix: string;
  objects: PublishedObject[];
  uploaded: number;
  unchanged: number;
  /** Multipart parts sent by this run. */
  partsUploaded: number;
  /** Multipart parts an interrupted upload already held, verified by MD5 and kept. */
  partsReused: number;
  /** Pending multipart uploads aborted: superseded ones of the files uploaded, and with `abortOrphans` the rest. */
  orphansAborted: number;
}

export interface PublishOptions {
  /** Files uploaded in parallel (default 8). */
  jobs?: number;
  /** Files larger than this go up in parts of this size (default 16 MiB, 5 MiB to 5 GiB). */
  partSizeBytes?: number;
  /** Parts in flight across all files (default 4); part memory is this times the part size. */
  partJobs?: number;
  /** Also abort pending uploads under the prefix that this run did not resume. */
  abortOrphans?: boolean;
  /** Only orphans initiated at least this long ago are aborted (default 24 hours). */
  orphanMinAgeMs?: number;
  log?: (line: string) => void;
}

/** Files to publish, in upload waves: targets, root versions, targets metadata, snapshots, timestamps. */
export async function publishOrder(outdir: string): Promise<string[][]> {
  const targetsDir = join(outdir, 'targets');
  const targets = existsSync(targetsDir) ? (await readdir(targetsDir)).filter((name) => !name.startsWith('.')).map((name) => `targets/${name}`) : [];
  const metadataDirs = (await findMetadataDirs(outdir)).map(({ variant, arch }) => `${variant}/${arch}`);
  const roots: string[] = [];
  const targetsMetadata: string[] = [];
  const snapshots: string[] = [];
  const timestamps: string[] = [];
  for (const dir of metadataDirs) {
    const names = (await readdir(join(outdir, dir))).filter((name) => !name.startsWith('.'));
    roots.push(...names.filter((name) => /^\d+\.root\.json$/.test(name)).map((name) => `${dir}/${name}`));
    targetsMetadata.push(...names.filter((name) => /^\d+\.targets\.json$/.test(name)).map((name) => `${dir}/${name}`));
    snapshots.push(...names.filter((name) => /^\d+\.snapshot\.json$/.test(name)).map((name) => `${dir}/${name}`));
    timestamps.push(`${dir}/timestamp.json`);
  }
  if (metadataDirs.length === 0) {
    throw new BrlError(`${outdir} holds no repository (no <variant>/<arch>/timestamp.json)`, { hint: 'build it first with brl repo build', exitCode: ExitCode.notFound, code: 'NO_REPOSITORY' });
  }
  // Each wave only refers to files of earlier waves, so a reader never finds a dangling reference.
  return [targets, roots, targetsMetadata, snapshots, timestamps];
}

function s3Client(): S3Client {
  // S3-compatible endpoints (AWS_ENDPOINT_URL_S3) rarely serve virtual-hosted buckets.
  const customEndpoint = Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL);
  return new S3Client({ forcePathStyle: customEndpoint, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
}

async function listExisting(client: S3Client, location: S3Location): Promise<Map<string, { size: number; etag: string }>> {
  const existing = new Map<string, { size: number; etag: string }>();
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({
      Bucket: location.bucket,
      ...(location.prefix ? { Prefix: `${location.prefix}/` } : {}),
      ...(token ? { ContinuationToken: token } : {}),
    }));
    for (const object of page.Contents ?? []) {
      if (object.Key) existing.set(object.Key, { size: object.Size ?? -1, etag: (object.ETag ?? '').replaceAll('"', '') });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return existing;
}

/**
 * Uploads in five waves, each finished before the next starts. Targets are content-addressed,
 * so one already present with the same size is skipped; metadata is compared by ETag (the MD5 of
 * a single PUT, or the MD5 of the part MD5s computed locally at the same part size). A published
 * root version is never replaced. Files above the part size go up in parts (`s3-multipart.ts`),
 * resuming an interrupted upload of the same key.
 */
export async function publishToS3(outdir: string, location: S3Location, options: PublishOptions = {}): Promise<PublishResult> {
  const partSizeBytes = options.partSizeBytes ?? defaultPartSizeBytes;
  checkPartSize(partSizeBytes);
  const pool = new PartBufferPool(partSizeBytes, Math.max(1, options.partJobs ?? defaultPartJobs));
  const client = s3Client();
  try {
    return await publishWaves(client, outdir, location, options, pool);
  } finally {
    client.destroy();
  }
}

async function publishWaves(client: S3Client, outdir: string, location: S3Location, options: PublishOptions, pool: PartBufferPool): Promise<PublishResult> {
  const partSizeBytes = pool.partSizeBytes;
  const waves = await publishOrder(outdir);
  const keyOf = (relative: string) => (location.prefix ? `${location.prefix}/${relative}` : relative);
  const sizes = new Map<string, number>();
  for (const relative of waves.flat()) sizes.set(relative, (await stat(join(outdir, relative))).size);
  const existing = await s3Call(location, () => listExisting(client, location));

  // Pending multipart uploads are only listed when this run may use them.
  const needsParts = [...sizes].some(([relative, size]) => size > partSizeBytes && !(relative.startsWith('targets/') && existing.get(keyOf(relative))?.size === size));
  const pending = needsParts || options.abortOrphans
    ? await s3Call(location, () => listPendingUploads(client, location.bucket, location.prefix ? `${location.prefix}/` : ''))
    : [];
  const handled = new Set<string>();
  let orphansAborted = 0;

  const objects: PublishedObject[] = [];
  for (const wave of waves) {
    objects.push(...(await mapLimit(wave, Math.max(1, options.jobs ?? 8), async (relative): Promise<PublishedObject> => {
      const path = join(outdir, relative);
      const key = keyOf(relative);
      const size = sizes.get(relative)!;
      const current = existing.get(key);
      let unchanged = false;
      if (current && relative.startsWith('targets/')) {
        unchanged = current.size === size;
      } else if (current) {
        unchanged = await sameMetadata(client, location, key, path, size, current, partSizeBytes);
        if (!unchanged && /\.root\.json$/.test(relative)) {
          throw new BrlError(`s3://${location.bucket}/${key} already holds a different root of that version`, {
            hint: 'a published root version never changes; publish the change as a new root version',
            exitCode: ExitCode.conflict,
            code: 'ROOT_CONFLICT',
          });
        }
      }
      if (unchanged) return { key, bytes: size, status: 'unchanged' };
      const contentType = relative.endsWith('.json') ? 'application/json' : 'application/octet-stream';
      // timestamp.json changes in place; everything else is immutable under its name.
      const cacheControl = relative.endsWith('/timestamp.json') ? 'max-age=60' : 'max-age=31536000, immutable';
      if (size > partSizeBytes) {
        const outcome = await s3Call(location, () => uploadMultipart(client, {
          bucket: location.bucket,
          key,
          path,
          sizeBytes: size,
          contentType,
          cacheControl,
          pending: pending.filter((upload) => upload.key === key),
          pool,
          ...(options.log ? { log: options.log } : {}),
        }));
        for (const uploadId of outcome.handledUploadIds) handled.add(uploadId);
        orphansAborted += outcome.aborted;
        options.log?.(`uploaded ${key} (${outcome.partsUploaded} of ${outcome.parts} parts sent)`);
        return { key, bytes: size, status: 'uploaded', parts: { total: outcome.parts, uploaded: outcome.partsUploaded, reused: outcome.partsReused } };
      }
      await s3Call(location, () => client.send(new PutObjectCommand({
        Bucket: location.bucket,
        Key: key,
        Body: createReadStream(path),
        ContentLength: size,
        ContentType: contentType,
        CacheControl: cacheControl,
      })));
      options.log?.(`uploaded ${key}`);
      return { key, bytes: size, status: 'uploaded' };
    })));
  }

  if (options.abortOrphans) {
    const minAgeMs = options.orphanMinAgeMs ?? 24 * 3600 * 1000;
    const now = Date.now();
    for (const upload of pending) {
      if (handled.has(upload.uploadId)) continue;
      // An upload without a start time is treated as old: S3 always reports one.
      if (upload.initiated && now - upload.initiated.getTime() < minAgeMs) continue;
      if (await s3Call(location, () => abortUpload(client, location.bucket, upload))) {
        orphansAborted += 1;
        options.log?.(`aborted orphaned upload of ${upload.key} (${upload.uploadId})`);
      }
    }
  }

  const uploaded = objects.filter((object) => object.status === 'uploaded').length;
  return {
    bucket: location.bucket,
    prefix: location.prefix,
    objects,
    uploaded,
    unchanged: objects.length - uploaded,
    partsUploaded: objects.reduce((sum, object) => sum + (object.parts?.uploaded ?? 0), 0),
    partsReused: objects.reduce((sum, object) => sum + (object.parts?.reused ?? 0), 0),
    orphansAborted,
  };
}

/**
 * Whether a metadata object holds the local file. A multipart ETag is recomputed at this run's part
 * size; one made with another part size cannot be, so the (small) object is read back and compared.
 */
async function sameMetadata(client: S3Client, location: S3Location, key: string, path: string, size: number, current: { size: number; etag: string }, partSizeBytes: number): Promise<boolean> {
  if (current.size !== size) return false;
  const multipart = /^[0-9a-f]{32}-(\d+)$/.exec(current.etag);
  if (!multipart) return current.etag === (await hashFile(path, 'md5')).hex;
  if (Number(multipart[1]) === Math.max(1, Math.ceil(size / partSizeBytes))) return current.etag === await multipartEtag(path, size, partSizeBytes);
  const object = await s3Call(location, () => client.send(new GetObjectCommand({ Bucket: location.bucket, Key: key })));
  const remote = await hashStream(object.Body as AsyncIterable<Uint8Array>);
  return remote.hex === (await hashFile(path)).hex;
}

async function s3Call<T>(location: S3Location, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof BrlError) throw error;
    const name = (error as { name?: string }).name ?? 'Error';
    throw new BrlError(`S3 bucket ${location.bucket}: ${name}: ${(error as Error).message}`, {
      hint: name === 'NoSuchBucket' ? 'create the bucket first, or check its name and region' : 'check AWS credentials, the region (AWS_REGION) and the permissions s3:ListBucket, s3:PutObject, s3:ListBucketMultipartUploads, s3:ListMultipartUploadParts and s3:AbortMultipartUpload',
      exitCode: name === 'NoSuchBucket' ? ExitCode.notFound : ExitCode.network,
      code: 'S3_ERROR',
      cause: error,
    });
  }
}
