// S3 multipart uploads that resume: parts read from disk into a bounded buffer pool, stored parts verified by MD5 and kept.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { mapLimit } from '../core/concurrency.ts';
import { BrlError, ExitCode } from '../core/errors.ts';
import { hashStream } from '../core/hash.ts';

const MiB = 1024 * 1024;
/** S3's limits: every part but the last at least 5 MiB, at most 5 GiB, at most 10,000 parts. */
export const minPartSizeBytes = 5 * MiB;
export const maxPartSizeBytes = 5 * 1024 * MiB;
export const maxPartCount = 10_000;
export const defaultPartSizeBytes = 16 * MiB;
/** Parts in flight across all files; memory for parts is this times the part size. */
export const defaultPartJobs = 4;

export interface PartRange {
  partNumber: number;
  start: number;
  length: number;
}

export function checkPartSize(partSizeBytes: number): void {
  if (!Number.isInteger(partSizeBytes) || partSizeBytes < minPartSizeBytes || partSizeBytes > maxPartSizeBytes) {
    throw new BrlError(`part size ${partSizeBytes} bytes is outside S3's limits`, {
      hint: 'a multipart part is 5 MiB to 5120 MiB (--part-size is in MiB)',
      exitCode: ExitCode.usage,
      code: 'BAD_PART_SIZE',
    });
  }
}

/** The byte ranges of `sizeBytes` cut into parts of `partSizeBytes` (the last one shorter). */
export function planParts(sizeBytes: number, partSizeBytes: number, name: string): PartRange[] {
  checkPartSize(partSizeBytes);
  const count = Math.max(1, Math.ceil(sizeBytes / partSizeBytes));
  if (count > maxPartCount) {
    throw new BrlError(`${name}: ${sizeBytes} bytes need ${count} parts of ${partSizeBytes / MiB} MiB; S3 allows ${maxPartCount}`, {
      hint: `raise --part-size to at least ${Math.ceil(sizeBytes / maxPartCount / MiB)} MiB`,
      exitCode: ExitCode.usage,
      code: 'TOO_MANY_PARTS',
    });
  }
  return Array.from({ length: count }, (_, index) => ({
    partNumber: index + 1,
    start: index * partSizeBytes,
    length: Math.min(partSizeBytes, sizeBytes - index * partSizeBytes),
  }));
}

async function rangeMd5(path: string, part: PartRange): Promise<Buffer> {
  if (part.length === 0) return createHash('md5').digest();
  const digest = await hashStream(createReadStream(path, { start: part.start, end: part.start + part.length - 1, highWaterMark: MiB }), 'md5');
  return Buffer.from(digest.hex, 'hex');
}

/** The ETag S3 gives an object uploaded in parts of `partSizeBytes`: MD5 of the parts' MD5s, `-<count>`. */
export async function multipartEtag(path: string, sizeBytes: number, partSizeBytes: number): Promise<string> {
  const parts = planParts(sizeBytes, partSizeBytes, path);
  const outer = createHash('md5');
  for (const part of parts) outer.update(await rangeMd5(path, part));
  return `${outer.digest('hex')}-${parts.length}`;
}

/**
 * At most `capacity` buffers of `partSizeBytes`, handed out one per part in flight and reused, so
 * memory for parts never exceeds capacity × part size however large the files are.
 */
export class PartBufferPool {
  readonly partSizeBytes: number;
  readonly capacity: number;
  #allocated = 0;
  #free: Buffer[] = [];
  #waiting: ((buffer: Buffer) => void)[] = [];

  constructor(partSizeBytes: number, capacity: number) {
    checkPartSize(partSizeBytes);
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`PartBufferPool: capacity must be a positive integer, got ${capacity}`);
    this.partSizeBytes = partSizeBytes;
    this.capacity = capacity;
  }

  /** Buffers allocated so far (never more than `capacity`). */
  get allocatedBuffers(): number {
    return this.#allocated;
  }

  async use<T>(fn: (buffer: Buffer) => Promise<T>): Promise<T> {
    const buffer = await this.#acquire();
    let result: T;
    try {
      result = await fn(buffer);
    } catch (error) {
      // A failed request may still be referenced by a socket being torn down: drop it rather than reuse it.
      this.#allocated -= 1;
      this.#handOver(undefined);
      throw error;
    }
    this.#handOver(buffer);
    return result;
  }

  #acquire(): Promise<Buffer> {
    const free = this.#free.pop();
    if (free) return Promise.resolve(free);
    if (this.#allocated < this.capacity) {
      this.#allocated += 1;
      return Promise.resolve(Buffer.allocUnsafeSlow(this.partSizeBytes));
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #handOver(buffer: Buffer | undefined): void {
    const next = this.#waiting.shift();
    if (!next) {
      if (buffer) this.#free.push(buffer);
      return;
    }
    if (buffer) {
      next(buffer);
    } else {
      this.#allocated += 1;
      next(Buffer.allocUnsafeSlow(this.partSizeBytes));
    }
  }
}

export interface PendingUpload {
  key: string;
  uploadId: string;
  initiated: Date | undefined;
}

/** Every multipart upload in progress under `prefix` (all pages). */
export async function listPendingUploads(client: S3Client, bucket: string, prefix: string): Promise<PendingUpload[]> {
  const uploads: PendingUpload[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await client.send(new ListMultipartUploadsCommand({
      Bucket: bucket,
      ...(prefix ? { Prefix: prefix } : {}),
      ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
      ...(uploadIdMarker === undefined ? {} : { UploadIdMarker: uploadIdMarker }),
    }));
    for (const upload of page.Uploads ?? []) {
      if (upload.Key && upload.UploadId) uploads.push({ key: upload.Key, uploadId: upload.UploadId, initiated: upload.Initiated });
    }
    if (!page.IsTruncated) return uploads;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
  }
}

export interface StoredPart {
  partNumber: number;
  etag: string;
  sizeBytes: number;
}

async function listStoredParts(client: S3Client, bucket: string, upload: PendingUpload): Promise<StoredPart[] | undefined> {
  const parts: StoredPart[] = [];
  let marker: string | undefined;
  for (;;) {
    let page;
    try {
      page = await client.send(new ListPartsCommand({ Bucket: bucket, Key: upload.key, UploadId: upload.uploadId, ...(marker === undefined ? {} : { PartNumberMarker: marker }) }));
    } catch (error) {
      // Completed or aborted since it was listed.
      if ((error as { name?: string }).name === 'NoSuchUpload') return undefined;
      throw error;
    }
    for (const part of page.Parts ?? []) {
      if (part.PartNumber !== undefined) parts.push({ partNumber: part.PartNumber, etag: unquote(part.ETag), sizeBytes: part.Size ?? -1 });
    }
    if (!page.IsTruncated) return parts;
    marker = page.NextPartNumberMarker;
  }
}

export async function abortUpload(client: S3Client, bucket: string, upload: PendingUpload): Promise<boolean> {
  try {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.key, UploadId: upload.uploadId }));
    return true;
  } catch (error) {
    if ((error as { name?: string }).name === 'NoSuchUpload') return false;
    throw error;
  }
}

function unquote(etag: string | undefined): string {
  return (etag ?? '').replaceAll('"', '');
}

export interface MultipartUploadRequest {
  bucket: string;
  key: string;
  path: string;
  sizeBytes: number;
  contentType: string;
  cacheControl: string;
  /** Uploads in progress for this key; the one holding most of this file's parts is resumed, the others aborted. */
  pending: readonly PendingUpload[];
  pool: PartBufferPool;
  log?: (line: string) => void;
}

export interface MultipartOutcome {
  uploadId: string;
  parts: number;
  partsUploaded: number;
  partsReused: number;
  /** Upload IDs this call resumed or aborted (so the caller does not count them as orphans). */
  handledUploadIds: string[];
  aborted: number;
}

interface ResumeCandidate {
  upload: PendingUpload;
  /** Stored parts whose size and MD5 match the same bytes of the local file. */
  verified: Map<number, string>;
}

/**
 * Checks a pending upload against the local file: it fits only if every stored part has a number
 * and size of this file's plan; of those, parts whose ETag is the MD5 of the same local byte range
 * are kept. ETags that are not MD5s (SSE-KMS) never match, so such parts are sent again.
 */
async function verifyPending(client: S3Client, request: MultipartUploadRequest, plan: readonly PartRange[], upload: PendingUpload): Promise<ResumeCandidate | undefined> {
  const stored = await listStoredParts(client, request.bucket, upload);
  if (!stored) return undefined;
  const fits = stored.every((part) => plan[part.partNumber - 1]?.length === part.sizeBytes);
  if (!fits) return undefined;
  const verified = new Map<number, string>();
  await mapLimit(stored, 4, async (part) => {
    const local = await rangeMd5(request.path, plan[part.partNumber - 1]!);
    if (local.toString('hex') === part.etag) verified.set(part.partNumber, part.etag);
  });
  return { upload, verified };
}

/**
 * Uploads one file in parts: resumes the best pending upload of the key (aborting the rest), sends
 * only the parts S3 does not already hold, then completes. A part that still fails after the SDK's
 * retries stops the file (parts in flight finish) and leaves the upload for a rerun to resume.
 */
export async function uploadMultipart(client: S3Client, request: MultipartUploadRequest): Promise<MultipartOutcome> {
  const { bucket, key, pool } = request;
  const plan = planParts(request.sizeBytes, pool.partSizeBytes, request.path);
  const handledUploadIds: string[] = [];
  let best: ResumeCandidate | undefined;
  let aborted = 0;
  const newestFirst = [...request.pending].sort((a, b) => (b.initiated?.getTime() ?? 0) - (a.initiated?.getTime() ?? 0));
  for (const upload of newestFirst) {
    const candidate = await verifyPending(client, request, plan, upload);
    handledUploadIds.push(upload.uploadId);
    if (candidate && (!best || candidate.verified.size > best.verified.size)) {
      if (best && await abortUpload(client, bucket, best.upload)) aborted += 1;
      best = candidate;
    } else if (await abortUpload(client, bucket, upload)) {
      aborted += 1;
    }
  }

  let uploadId = best?.upload.uploadId;
  if (uploadId === undefined) {
    const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: request.contentType, CacheControl: request.cacheControl }));
    if (!created.UploadId) throw new Error(`CreateMultipartUpload for ${key} returned no UploadId`);
    uploadId = created.UploadId;
  } else {
    request.log?.(`resuming s3://${bucket}/${key}: ${best!.verified.size} of ${plan.length} parts already stored`);
  }

  const etags = new Map<number, string>(best?.verified ?? []);
  const partsReused = etags.size;
  const missing = plan.filter((part) => !etags.has(part.partNumber));
  const file = await open(request.path, 'r');
  try {
    await mapLimit(missing, pool.capacity, (part) => pool.use(async (buffer) => {
      const body = buffer.subarray(0, part.length);
      let filled = 0;
      while (filled < part.length) {
        const { bytesRead } = await file.read(body, filled, part.length - filled, part.start + filled);
        if (bytesRead === 0) throw new BrlError(`${request.path} shrank while it was uploaded`, { hint: 'leave the repository unchanged while it is published', exitCode: ExitCode.conflict, code: 'FILE_CHANGED' });
        filled += bytesRead;
      }
      const md5 = createHash('md5').update(body).digest();
      try {
        const response = await client.send(new UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: part.partNumber,
          Body: body,
          ContentLength: part.length,
          ContentMD5: md5.toString('base64'),
        }));
        const etag = unquote(response.ETag);
        if (/^[0-9a-f]{32}$/.test(etag) && etag !== md5.toString('hex')) {
          throw new Error(`S3 stored part ${part.partNumber} with ETag ${etag}, not the MD5 of the bytes sent (${md5.toString('hex')})`);
        }
        etags.set(part.partNumber, etag);
      } catch (error) {
        throw partFailure(request, part, plan.length, error);
      }
    }));
  } catch (error) {
    if (error instanceof BrlError && error.code === 'S3_PART_FAILED') {
      // The message counts parts stored before the failure, and those in flight that finished after it.
      const stored = etags.size;
      throw new BrlError(`${error.message.replace(/\.$/, '')}; ${stored} of ${plan.length} parts are stored in upload ${uploadId}`, {
        hint: `rerun the same publish: the stored parts are verified against the file and kept, only the other ${plan.length - stored} are sent`,
        exitCode: error.exitCode,
        code: error.code,
        cause: error.cause,
      });
    }
    throw error;
  } finally {
    await file.close();
  }

  await client.send(new CompleteMultipartUploadCommand({
    Bucket: bucket,
    Key: key,
    UploadId: uploadId,
    MultipartUpload: { Parts: plan.map((part) => ({ PartNumber: part.partNumber, ETag: `"${etags.get(part.partNumber)}"` })) },
  }));
  return { uploadId, parts: plan.length, partsUploaded: missing.length, partsReused, handledUploadIds, aborted };
}

function partFailure(request: MultipartUploadRequest, part: PartRange, partCount: number, error: unknown): BrlError {
  const name = (error as { name?: string }).name ?? 'Error';
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return new BrlError(`uploading ${request.path} to s3://${request.bucket}/${request.key}: part ${part.partNumber} of ${partCount} failed${status ? ` (HTTP ${status})` : ''}: ${name}: ${(error as Error).message}`, {
    exitCode: ExitCode.network,
    code: 'S3_PART_FAILED',
    cause: error,
  });
}
