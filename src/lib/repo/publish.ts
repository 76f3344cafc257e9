// `brl repo publish --s3`: uploads a repository so that clients never see metadata before its files.
import { createReadStream, existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mapLimit } from '../core/concurrency.ts';
import { BrlError, ExitCode } from '../core/errors.ts';
import { hashFile } from '../core/hash.ts';
import { findMetadataDirs } from './layout.ts';

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
}

export interface PublishResult {
  bucket: string;
  prefix: string;
  objects: PublishedObject[];
  uploaded: number;
  unchanged: number;
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
 * so one already present with the same size is skipped; metadata is compared by MD5 (the ETag of
 * a single-part upload). A published root version is never replaced.
 */
export async function publishToS3(outdir: string, location: S3Location, options: { jobs?: number; log?: (line: string) => void } = {}): Promise<PublishResult> {
  const client = s3Client();
  const waves = await publishOrder(outdir);
  const existing = await s3Call(location, () => listExisting(client, location));
  const objects: PublishedObject[] = [];
  const keyOf = (relative: string) => (location.prefix ? `${location.prefix}/${relative}` : relative);
  for (const wave of waves) {
    objects.push(...(await mapLimit(wave, Math.max(1, options.jobs ?? 8), async (relative): Promise<PublishedObject> => {
      const path = join(outdir, relative);
      const key = keyOf(relative);
      const size = (await stat(path)).size;
      const isTarget = relative.startsWith('targets/');
      const current = existing.get(key);
      let unchanged = false;
      if (current && isTarget) {
        unchanged = current.size === size;
      } else if (current) {
        const md5 = (await hashFile(path, 'md5')).hex;
        unchanged = current.size === size && current.etag === md5;
        if (!unchanged && /\.root\.json$/.test(relative)) {
          throw new BrlError(`s3://${location.bucket}/${key} already holds a different root of that version`, {
            hint: 'a published root version never changes; publish the change as a new root version',
            exitCode: ExitCode.conflict,
            code: 'ROOT_CONFLICT',
          });
        }
      }
      if (!unchanged) {
        await s3Call(location, () => client.send(new PutObjectCommand({
          Bucket: location.bucket,
          Key: key,
          Body: createReadStream(path),
          ContentLength: size,
          ContentType: relative.endsWith('.json') ? 'application/json' : 'application/octet-stream',
          // timestamp.json changes in place; everything else is immutable under its name.
          CacheControl: relative.endsWith('/timestamp.json') ? 'max-age=60' : 'max-age=31536000, immutable',
        })));
        options.log?.(`uploaded ${key}`);
      }
      return { key, bytes: size, status: unchanged ? 'unchanged' : 'uploaded' };
    })));
  }
  const uploaded = objects.filter((object) => object.status === 'uploaded').length;
  return { bucket: location.bucket, prefix: location.prefix, objects, uploaded, unchanged: objects.length - uploaded };
}

async function s3Call<T>(location: S3Location, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof BrlError) throw error;
    const name = (error as { name?: string }).name ?? 'Error';
    throw new BrlError(`S3 bucket ${location.bucket}: ${name}: ${(error as Error).message}`, {
      hint: name === 'NoSuchBucket' ? 'create the bucket first, or check its name and region' : 'check AWS credentials, the region (AWS_REGION) and s3:ListBucket/s3:PutObject permissions',
      exitCode: name === 'NoSuchBucket' ? ExitCode.notFound : ExitCode.network,
      code: 'S3_ERROR',
      cause: error,
    });
  }
}
