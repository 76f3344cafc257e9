// Reading a repository's metadata and targets from a local directory or an HTTP(S) base URL.
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { fileURLToPath } from 'node:url';
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';

export interface RepoReader {
  /** Human location of a metadata file, for messages. */
  metadataLocation(name: string): string;
  targetLocation(fileName: string): string;
  /** The file's bytes, or undefined when it does not exist (HTTP 403/404). */
  readMetadata(name: string): Promise<Buffer | undefined>;
  /** A stream of the stored target file `<sha256>.<name>`, or undefined when it does not exist. */
  openTarget(fileName: string): Promise<Readable | undefined>;
}

export class DirectoryReader implements RepoReader {
  readonly metadataDir: string;
  readonly targetsDir: string | undefined;

  constructor(metadataDir: string, targetsDir?: string) {
    this.metadataDir = metadataDir;
    this.targetsDir = targetsDir;
  }

  metadataLocation(name: string): string {
    return join(this.metadataDir, name);
  }

  targetLocation(fileName: string): string {
    return join(this.targetsDir ?? '(no targets directory)', fileName);
  }

  async readMetadata(name: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.metadataLocation(name));
    } catch (error) {
      // A path through a file (a mistyped DIR) is as absent as a missing one.
      if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return undefined;
      throw error;
    }
  }

  async openTarget(fileName: string): Promise<Readable | undefined> {
    if (this.targetsDir === undefined) return undefined;
    const stream = createReadStream(this.targetLocation(fileName));
    return new Promise((resolve, reject) => {
      stream.once('readable', () => resolve(stream));
      stream.once('error', (error) => (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR' ? resolve(undefined) : reject(error)));
    });
  }
}

/** Far above any real metadata (10,000 targets make 1.2 MB of targets.json). */
const maxMetadataBytes = 64 * 1024 * 1024;

export class HttpReader implements RepoReader {
  readonly metadataBaseUrl: string;
  readonly targetsBaseUrl: string | undefined;

  constructor(metadataBaseUrl: string, targetsBaseUrl?: string) {
    this.metadataBaseUrl = withSlash(metadataBaseUrl);
    this.targetsBaseUrl = targetsBaseUrl === undefined ? undefined : withSlash(targetsBaseUrl);
  }

  metadataLocation(name: string): string {
    return new URL(name, this.metadataBaseUrl).href;
  }

  targetLocation(fileName: string): string {
    return this.targetsBaseUrl === undefined ? fileName : new URL(fileName, this.targetsBaseUrl).href;
  }

  async readMetadata(name: string): Promise<Buffer | undefined> {
    const url = this.metadataLocation(name);
    const response = await get(url);
    if (response === undefined) return undefined;
    if (response.body === null) return Buffer.alloc(0);
    // A hostile or broken server must not make brl buffer without bound.
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of Readable.fromWeb(response.body as WebReadableStream<Uint8Array>) as AsyncIterable<Buffer>) {
      length += chunk.length;
      if (length > maxMetadataBytes) {
        throw new BrlError(`${url} is larger than ${maxMetadataBytes} bytes; refusing it as metadata`, { exitCode: ExitCode.verifyFailed, code: 'METADATA_TOO_LARGE' });
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  async openTarget(fileName: string): Promise<Readable | undefined> {
    if (this.targetsBaseUrl === undefined) return undefined;
    const response = await get(this.targetLocation(fileName));
    if (response?.body == null) return undefined;
    return Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
  }
}

/** A reader for a metadata location: a directory, a file:// URL or an http(s):// URL. */
export function readerFor(metadataLocation: string, targetsLocation?: string): RepoReader {
  if (/^https?:\/\//.test(metadataLocation)) return new HttpReader(metadataLocation, targetsLocation);
  const path = (location: string) => (location.startsWith('file://') ? fileURLToPath(location) : location);
  return new DirectoryReader(path(metadataLocation), targetsLocation === undefined ? undefined : path(targetsLocation));
}

export function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

async function get(url: string): Promise<Response | undefined> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(100_000) });
  } catch (error) {
    throw new BrlError(`cannot fetch ${url}: ${(error as Error).message}`, {
      hint: 'check the URL and your network connection',
      exitCode: ExitCode.network,
      code: 'FETCH_FAILED',
      cause: error,
    });
  }
  if (response.status === 404 || response.status === 403) {
    await response.body?.cancel();
    return undefined;
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new BrlError(`GET ${url} answered HTTP ${response.status}`, { exitCode: ExitCode.network, code: 'FETCH_FAILED' });
  }
  return response;
}
