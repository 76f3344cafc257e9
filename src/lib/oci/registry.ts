// A client for the OCI distribution API: for a push, blob HEAD, monolithic upload (POST then PUT
// with the digest), manifest PUT and GET; for a pull, a manifest by tag or digest and blobs
// streamed. Every digest the registry reports back, and every byte it serves, is checked against
// the digest brl computed or was pinned.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { EnvHttpProxyAgent, request, type Dispatcher } from 'undici';
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';
import { sha256Digest, type Descriptor } from './models.ts';

export interface RegistryClientOptions {
  /** `http://host:port` or `https://host:port`. */
  baseUrl: string;
  /** `host[:port]` for messages and references. */
  registry: string;
  repository: string;
  timeoutMs?: number;
  userAgent?: string;
}

const connectionErrors = ['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_SOCKET'];

export class RegistryClient {
  readonly #options: RegistryClientOptions;
  readonly #dispatcher: Dispatcher;

  constructor(options: RegistryClientOptions) {
    this.#options = options;
    const timeout = options.timeoutMs ?? 30_000;
    this.#dispatcher = new EnvHttpProxyAgent({ headersTimeout: timeout, bodyTimeout: timeout, connect: { timeout } });
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  /** `GET /v2/`: the registry answers and speaks the distribution API without credentials. */
  async ping(): Promise<void> {
    const response = await this.#call('GET', '/v2/', 'checking the API version');
    const body = await response.body.text();
    if (response.statusCode === 401) {
      throw new BrlError(`registry ${this.#options.registry} requires authentication`, {
        hint: 'brl pushes without credentials for now: use a registry that accepts anonymous pushes (a local docker-registry), or push the layout with skopeo',
        exitCode: ExitCode.network,
        code: 'REGISTRY_AUTH_REQUIRED',
      });
    }
    if (response.statusCode !== 200) throw this.#statusError('GET /v2/', response.statusCode, body);
  }

  /** Whether the repository has the blob; a registry that reports another digest for it is an error. */
  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    const path = `/v2/${this.#options.repository}/blobs/${descriptor.digest}`;
    const response = await this.#call('HEAD', path, `checking blob ${descriptor.digest}`);
    await response.body.dump();
    if (response.statusCode === 404) return false;
    if (response.statusCode !== 200) throw this.#statusError(`HEAD ${path}`, response.statusCode, '');
    this.#checkDigest(`blob ${descriptor.digest}`, descriptor.digest, header(response, 'docker-content-digest'));
    return true;
  }

  /** Monolithic upload: `POST …/blobs/uploads/`, then `PUT <location>?digest=` with the whole blob streamed. */
  async uploadBlob(descriptor: Descriptor, file: string): Promise<void> {
    const start = `/v2/${this.#options.repository}/blobs/uploads/`;
    const started = await this.#call('POST', start, 'starting an upload');
    const startBody = await started.body.text();
    const location = header(started, 'location');
    if (started.statusCode !== 202 || location === undefined) throw this.#statusError(`POST ${start}`, started.statusCode, startBody);
    const url = new URL(location, this.#options.baseUrl);
    url.searchParams.set('digest', descriptor.digest);
    const put = await this.#call('PUT', url.pathname + url.search, `uploading blob ${descriptor.digest}`, {
      body: createReadStream(file) as Readable,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(descriptor.size) },
    });
    const putBody = await put.body.text();
    if (put.statusCode !== 201) throw this.#statusError(`PUT ${url.pathname}`, put.statusCode, putBody);
    this.#checkDigest(`blob ${descriptor.digest}`, descriptor.digest, header(put, 'docker-content-digest'));
  }

  /** `PUT …/manifests/<tag>` with the exact bytes brl hashed; the registry must report the same digest. */
  async putManifest(reference: string, mediaType: string, bytes: Buffer): Promise<string> {
    const expected = sha256Digest(bytes);
    const path = `/v2/${this.#options.repository}/manifests/${reference}`;
    const response = await this.#call('PUT', path, `putting manifest ${reference}`, {
      body: bytes,
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
    });
    const body = await response.body.text();
    if (response.statusCode !== 201) throw this.#statusError(`PUT ${path}`, response.statusCode, body);
    this.#checkDigest(`manifest ${reference}`, expected, header(response, 'docker-content-digest'));
    return expected;
  }

  /** The manifest the registry serves for `digest`, hashed again here: the pull side of the pin. */
  async getManifest(digest: string, mediaType: string): Promise<Buffer> {
    const path = `/v2/${this.#options.repository}/manifests/${digest}`;
    const response = await this.#call('GET', path, `reading manifest ${digest}`, { headers: { accept: mediaType } });
    const bytes = Buffer.from(await response.body.arrayBuffer());
    if (response.statusCode !== 200) throw this.#statusError(`GET ${path}`, response.statusCode, bytes.toString('utf8'));
    this.#checkDigest(`manifest ${digest}`, digest, sha256Digest(bytes));
    this.#checkDigest(`manifest ${digest}`, digest, header(response, 'docker-content-digest'));
    return bytes;
  }

  /**
   * The manifest (or index) `reference` (a tag or a digest) names, with the media types of
   * `accept`. By digest, the bytes must hash to it; by tag, the digest is computed here (and a
   * Docker-Content-Digest the registry sends must agree).
   */
  async resolveManifest(reference: string, accept: readonly string[]): Promise<{ digest: string; mediaType: string; bytes: Buffer }> {
    const path = `/v2/${this.#options.repository}/manifests/${reference}`;
    const response = await this.#call('GET', path, `reading manifest ${reference}`, { headers: { accept: accept.join(', ') } });
    const bytes = Buffer.from(await response.body.arrayBuffer());
    if (response.statusCode !== 200) throw this.#statusError(`GET ${path}`, response.statusCode, bytes.toString('utf8'));
    const digest = sha256Digest(bytes);
    if (reference.startsWith('sha256:')) this.#checkDigest(`manifest ${reference}`, reference, digest);
    this.#checkDigest(`manifest ${reference}`, digest, header(response, 'docker-content-digest'));
    let mediaType = header(response, 'content-type')?.split(';')[0]?.trim() ?? '';
    if (!accept.includes(mediaType)) {
      // Some registries answer application/json: the document names its own type.
      mediaType = (JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType ?? '';
    }
    if (!accept.includes(mediaType)) {
      throw new BrlError(`registry ${this.#options.registry}: manifest ${reference} is of type "${mediaType}", not one of ${accept.join(', ')}`, {
        exitCode: ExitCode.badInput,
        code: 'REGISTRY_MANIFEST_TYPE',
      });
    }
    return { digest, mediaType, bytes };
  }

  /**
   * The blob's bytes as they arrive; the last chunk is yielded only after the whole blob hashed to
   * `descriptor.digest` with `descriptor.size` bytes, so a consumer that commits after the loop
   * never commits bytes that did not match.
   */
  async *blobChunks(descriptor: Descriptor): AsyncGenerator<Buffer> {
    const path = `/v2/${this.#options.repository}/blobs/${descriptor.digest}`;
    const response = await this.#call('GET', path, `reading blob ${descriptor.digest}`);
    if (response.statusCode !== 200) throw this.#statusError(`GET ${path}`, response.statusCode, await response.body.text());
    const hash = createHash('sha256');
    let size = 0;
    let held: Buffer | undefined;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
      if (size > descriptor.size) {
        response.body.destroy();
        throw this.#contentMismatch(descriptor, `more than its ${descriptor.size} bytes`);
      }
      if (held !== undefined) yield held;
      held = chunk;
    }
    if (size !== descriptor.size) throw this.#contentMismatch(descriptor, `${size} bytes, not ${descriptor.size}`);
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== descriptor.digest) throw this.#contentMismatch(descriptor, `bytes hashing to ${actual}`);
    if (held !== undefined) yield held;
  }

  #contentMismatch(descriptor: Descriptor, served: string): BrlError {
    return new BrlError(`registry ${this.#options.registry} served blob ${descriptor.digest} of ${this.#options.repository} as ${served}`, {
      hint: 'the registry (or something between it and this host) changed the bytes: nothing was kept; check the registry',
      exitCode: ExitCode.verifyFailed,
      code: 'REGISTRY_DIGEST_MISMATCH',
    });
  }

  async #call(method: Dispatcher.HttpMethod, path: string, doing: string, extra: { body?: Buffer | Readable; headers?: Record<string, string> } = {}): Promise<Dispatcher.ResponseData> {
    try {
      return await request(new URL(path, this.#options.baseUrl), {
        method,
        dispatcher: this.#dispatcher,
        headers: { 'user-agent': this.#options.userAgent ?? 'brl container push', ...extra.headers },
        ...(extra.body === undefined ? {} : { body: extra.body }),
      });
    } catch (error) {
      const code = errnoCode(error) ?? errnoCode((error as { cause?: unknown }).cause);
      if (code !== undefined && connectionErrors.includes(code)) {
        throw new BrlError(`registry ${this.#options.registry} (${this.#options.baseUrl}) did not answer while ${doing}: ${code}`, {
          hint: code === 'ECONNREFUSED'
            ? `nothing listens at ${this.#options.registry}: start the registry or correct --registry`
            : 'check that the registry runs and is reachable from here (proxy settings: HTTP_PROXY, NO_PROXY)',
          exitCode: ExitCode.network,
          code: 'REGISTRY_UNREACHABLE',
          cause: error,
        });
      }
      throw error;
    }
  }

  #checkDigest(what: string, expected: string, reported: string | undefined): void {
    // A registry need not send Docker-Content-Digest; when it does, it must be the digest brl computed.
    if (reported === undefined || reported === expected) return;
    throw new BrlError(`registry ${this.#options.registry} reports ${what} as ${reported}, but brl computed ${expected}`, {
      hint: 'the registry (or something between it and brl) changed the bytes: nothing is pinned; check the registry and push again',
      exitCode: ExitCode.verifyFailed,
      code: 'REGISTRY_DIGEST_MISMATCH',
    });
  }

  #statusError(request: string, status: number, body: string): BrlError {
    let detail = body.trim().slice(0, 300);
    try {
      const parsed = JSON.parse(body) as { errors?: { code?: string; message?: string }[] };
      if (parsed.errors !== undefined) detail = parsed.errors.map((error) => `${error.code ?? ''}: ${error.message ?? ''}`).join('; ');
    } catch {
      // not JSON: the text as it came
    }
    return new BrlError(`registry ${this.#options.registry}: ${request} answered ${status}${detail === '' ? '' : ` (${detail})`}`, {
      exitCode: status === 404 ? ExitCode.notFound : ExitCode.network,
      code: 'REGISTRY_ERROR',
    });
  }
}

function header(response: Dispatcher.ResponseData, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
