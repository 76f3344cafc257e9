// Streams one source URL into a final path: temp file, retries with backoff, HTTP Range resume, sha512 check, rename.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { EnvHttpProxyAgent, interceptors, request, type Dispatcher } from 'undici';
import { errnoCode } from '../core/errors.ts';
import { claimPartialFile } from './partial.ts';

export interface NetworkOptions {
  /** Tries per source URL; only 5xx, 408, 429, timeouts and dropped connections are retried. */
  attempts: number;
  /** Wait before the first retry; doubles on each further retry (with jitter). */
  initialBackoffMs: number;
  /** Limit on connecting, on waiting for response headers, and on a body that stops sending. */
  timeoutMs: number;
}

export const defaultNetworkOptions: NetworkOptions = { attempts: 4, initialBackoffMs: 500, timeoutMs: 30_000 };

export interface Sha512Mismatch {
  expected: string;
  actual: string;
}

/** One source failed; the caller moves on to the next source. `retryable` failures were already retried. */
export class SourceError extends Error {
  override readonly name = 'SourceError';
  readonly retryable: boolean;
  readonly mismatch: Sha512Mismatch | undefined;

  constructor(message: string, options: { retryable?: boolean; mismatch?: Sha512Mismatch; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = options.retryable ?? false;
    this.mismatch = options.mismatch;
  }
}

export interface DownloadOptions {
  dispatcher: Dispatcher;
  network: NetworkOptions;
  expectedSha512: string;
  userAgent: string;
  onProgress?: (receivedBytes: number, totalBytes: number | undefined) => void;
}

/** An HTTP client that honours HTTP(S)_PROXY/NO_PROXY, follows redirects and applies the timeouts. */
export function createDispatcher(network: NetworkOptions): Dispatcher {
  return new EnvHttpProxyAgent({
    headersTimeout: network.timeoutMs,
    bodyTimeout: network.timeoutMs,
    connect: { timeout: network.timeoutMs },
  }).compose(interceptors.redirect({ maxRedirections: 5 }));
}

/**
 * Puts the bytes of `url` (http, https or file) at `finalPath` only if their sha512 is the expected one.
 * Throws SourceError when the source cannot deliver them; nothing is left at `finalPath` then, but
 * bytes received before a network failure stay in `.<file>.part` for the next attempt to resume.
 */
export async function downloadVerified(url: string, finalPath: string, options: DownloadOptions): Promise<void> {
  await mkdir(dirname(finalPath), { recursive: true });
  const partial = await claimPartialFile(finalPath);
  let keepBytes = false;
  try {
    if (url.startsWith('file:')) await copyVerified(url, partial.path, options);
    else if (/^https?:/.test(url)) await downloadHttpVerified(url, partial.path, options);
    else throw new SourceError(`unsupported URL scheme in ${url}`);
    await rename(partial.path, finalPath);
  } catch (error) {
    // Bytes cut off by the network are the right bytes so far (the file is content-addressed), so the
    // next source or the next run continues them; a wrong digest already deleted them.
    keepBytes = error instanceof SourceError && error.mismatch === undefined && /^https?:/.test(url);
    throw error;
  } finally {
    await partial.release(keepBytes);
  }
}

async function copyVerified(url: string, tempPath: string, options: DownloadOptions): Promise<void> {
  const sourcePath = fileURLToPath(url);
  let totalBytes: number;
  try {
    totalBytes = (await stat(sourcePath)).size;
  } catch (error) {
    throw new SourceError(errnoCode(error) === 'ENOENT' ? `${sourcePath} does not exist` : `cannot read ${sourcePath}: ${String(error)}`);
  }
  const hash = createHash('sha512');
  const meter = hashingMeter(hash, 0, totalBytes, options.onProgress);
  await pipeline(createReadStream(sourcePath), meter.stream, createWriteStream(tempPath, { flush: true }));
  checkDigest(hash.digest('hex'), options.expectedSha512);
}

/** What carries over between attempts on one URL. */
interface ResumeState {
  /** Strong ETag or Last-Modified of the last full response, sent as If-Range so a resume continues the same bytes. */
  validator: string | undefined;
  /** Whether the bytes in the temp file came from more than one response. */
  resumed: boolean;
}

async function downloadHttpVerified(url: string, tempPath: string, options: DownloadOptions): Promise<void> {
  const state: ResumeState = { validator: undefined, resumed: false };
  let restartedAfterMismatch = false;
  for (let attempt = 1; ; attempt++) {
    let digest: string;
    try {
      digest = await attemptHttp(url, tempPath, state, options);
    } catch (error) {
      const failure = asSourceError(error);
      if (!failure.retryable || attempt >= options.network.attempts) throw failure;
      await sleep(backoffMs(options.network.initialBackoffMs, attempt));
      continue;
    }
    if (digest === options.expectedSha512) return;
    await rm(tempPath, { force: true });
    // Pieces from different responses may not belong together; one clean download decides.
    if (state.resumed && !restartedAfterMismatch) {
      restartedAfterMismatch = true;
      state.resumed = false;
      state.validator = undefined;
      continue;
    }
    checkDigest(digest, options.expectedSha512);
  }
}

async function attemptHttp(url: string, tempPath: string, state: ResumeState, options: DownloadOptions): Promise<string> {
  const offset = await sizeOf(tempPath);
  const headers: Record<string, string> = { 'user-agent': options.userAgent, 'accept-encoding': 'identity' };
  if (offset > 0) {
    headers.range = `bytes=${offset}-`;
    if (state.validator !== undefined) headers['if-range'] = state.validator;
  }
  const response = await request(url, { dispatcher: options.dispatcher, headers });
  const status = response.statusCode;
  if (status === 416 && offset > 0) {
    await response.body.dump();
    await rm(tempPath, { force: true });
    throw new SourceError(`HTTP 416 for the resume range; restarting`, { retryable: true });
  }
  if (status !== 200 && status !== 206) {
    await response.body.dump();
    throw new SourceError(`HTTP ${status}`, { retryable: status >= 500 || status === 408 || status === 429 });
  }

  let totalBytes: number | undefined;
  let startAt = 0;
  if (status === 206) {
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headerValue(response.headers['content-range']) ?? '');
    if (range === null || Number(range[1]) !== offset) {
      await response.body.dump();
      await rm(tempPath, { force: true });
      throw new SourceError(`HTTP 206 with an unexpected Content-Range; restarting`, { retryable: true });
    }
    startAt = offset;
    totalBytes = range[3] === '*' ? undefined : Number(range[3]);
    state.resumed = true;
  } else {
    // A full body (also what a server without Range support sends): start over from byte 0.
    const etag = headerValue(response.headers.etag);
    state.validator = etag !== undefined && !etag.startsWith('W/') ? etag : headerValue(response.headers['last-modified']);
    state.resumed = false;
    const length = headerValue(response.headers['content-length']);
    totalBytes = length === undefined ? undefined : Number(length);
  }

  const hash = createHash('sha512');
  if (startAt > 0) {
    // Hash what is on disk rather than what was sent earlier: a failed write may have kept less.
    for await (const chunk of createReadStream(tempPath)) hash.update(chunk as Buffer);
  }
  const meter = hashingMeter(hash, startAt, totalBytes, options.onProgress);
  await pipeline(response.body, meter.stream, createWriteStream(tempPath, { flags: startAt > 0 ? 'a' : 'w', flush: true }));
  if (totalBytes !== undefined && meter.receivedBytes() !== totalBytes) {
    throw new SourceError(`body ended after ${meter.receivedBytes()} of ${totalBytes} bytes`, { retryable: true });
  }
  return hash.digest('hex');
}

function hashingMeter(
  hash: Hash,
  startAt: number,
  totalBytes: number | undefined,
  onProgress: DownloadOptions['onProgress'],
): { stream: Transform; receivedBytes: () => number } {
  let received = startAt;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      received += chunk.length;
      onProgress?.(received, totalBytes);
      callback(null, chunk);
    },
  });
  return { stream, receivedBytes: () => received };
}

function checkDigest(actual: string, expected: string): void {
  if (actual !== expected) {
    throw new SourceError(`sha512 mismatch: expected ${expected}, got ${actual}`, { mismatch: { expected, actual } });
  }
}

// Connection-level failures worth another try; refused connections and unknown hosts are not.
const retryableCodes = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
]);
const permanentNetworkCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_INVALID_ARG']);

/** Network failures become SourceErrors; anything else (a full disk, a bug) propagates unchanged. */
function asSourceError(error: unknown): SourceError {
  if (error instanceof SourceError) return error;
  const code = errnoCode(error) ?? '';
  const reason = error instanceof Error ? error.message || code : String(error);
  if (retryableCodes.has(code)) return new SourceError(`${reason} (${code})`, { retryable: true, cause: error });
  if (permanentNetworkCodes.has(code) || code.startsWith('UND_ERR') || code.startsWith('ERR_TLS') || code.includes('CERT')) {
    return new SourceError(`${reason} (${code})`, { cause: error });
  }
  throw error;
}

function backoffMs(initialMs: number, attempt: number): number {
  const base = initialMs * 2 ** (attempt - 1);
  return base / 2 + Math.random() * (base / 2);
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return 0;
    throw error;
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
