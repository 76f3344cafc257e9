// A client for the OCI distribution API: for a push, blob HEAD, monolithic upload (POST then PUT
// with the digest), manifest PUT and GET; for a pull, a manifest by tag or digest and blobs
// streamed, answering Basic and Bearer challenges with the registry's credentials. Every digest the
// registry reports back, and every byte it serves, is checked against the digest brl computed or
// was pinned.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { EnvHttpProxyAgent, request, type Dispatcher } from 'undici';
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';
import { sha256Digest, type Descriptor } from './models.ts';

/** Credentials as Docker's config.json and containerd hold them (Bottlerocket's settings.container-registry.credentials). */
export interface RegistryCredential {
  username?: string;
  password?: string;
  /** base64 of `username:password`. */
  auth?: string;
  /** An OAuth2 refresh token, exchanged at a Bearer challenge's realm. */
  identitytoken?: string;
}

export interface RegistryClientOptions {
  /** `http://host:port` or `https://host:port`, with a path when the API is served below one (no trailing `/`). */
  baseUrl: string;
  /** `host[:port]` for messages and references. */
  registry: string;
  repository: string;
  timeoutMs?: number;
  userAgent?: string;
  /** Sent when the registry challenges (401); without it, only anonymous Bearer tokens are asked for. */
  credential?: RegistryCredential;
}

const connectionErrors = ['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_SOCKET'];

export class RegistryClient {
  readonly #options: RegistryClientOptions;
  readonly #dispatcher: Dispatcher;
  /** The Authorization header the last challenge was answered with, reused for later requests. */
  #authorization: string | undefined;

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
    const put = await this.#call('PUT', url, `uploading blob ${descriptor.digest}`, {
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
    const response = await this.#followRedirects(await this.#call('GET', path, `reading blob ${descriptor.digest}`), new URL(this.#options.baseUrl + path), `reading blob ${descriptor.digest}`);
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

  /** `target`: a path below the base URL (`/v2/…`), or a whole URL (an upload's Location). */
  async #call(method: Dispatcher.HttpMethod, target: string | URL, doing: string, extra: { body?: Buffer | Readable; headers?: Record<string, string> } = {}): Promise<Dispatcher.ResponseData> {
    const url = typeof target === 'string' ? new URL(this.#options.baseUrl + target) : target;
    const send = (): Promise<Dispatcher.ResponseData> => this.#send(url, doing, {
      method,
      headers: { 'user-agent': this.#options.userAgent ?? 'brl container push', ...(this.#authorization === undefined ? {} : { authorization: this.#authorization }), ...extra.headers },
      ...(extra.body === undefined ? {} : { body: extra.body }),
    });
    const response = await send();
    // A pull's reads answer a challenge; a push sends no credentials yet (ping() names the 401).
    const challenge = header(response, 'www-authenticate');
    if (response.statusCode !== 401 || challenge === undefined || (method !== 'GET' && method !== 'HEAD') || target === '/v2/') return response;
    await response.body.dump();
    this.#authorization = await this.#answer(challenge, doing);
    return send();
  }

  async #send(url: URL, doing: string, options: { method: Dispatcher.HttpMethod; headers: Record<string, string>; body?: Buffer | Readable | string }): Promise<Dispatcher.ResponseData> {
    try {
      return await request(url, { ...options, dispatcher: this.#dispatcher });
    } catch (error) {
      const code = errnoCode(error) ?? errnoCode((error as { cause?: unknown }).cause);
      if (code !== undefined && connectionErrors.includes(code)) {
        throw new BrlError(`registry ${this.#options.registry} (${url.origin}) did not answer while ${doing}: ${code}`, {
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

  /**
   * Registries hand blobs to a storage service with a redirect (Docker Hub, ECR, distribution on
   * S3); the storage URL is signed, so the registry's Authorization is not sent there.
   */
  async #followRedirects(first: Dispatcher.ResponseData, from: URL, doing: string): Promise<Dispatcher.ResponseData> {
    let response = first;
    let url = from;
    for (let hops = 0; [301, 302, 303, 307, 308].includes(response.statusCode); hops++) {
      const location = header(response, 'location');
      if (location === undefined || hops === 5) break;
      await response.body.dump();
      url = new URL(location, url);
      response = await this.#send(url, doing, { method: 'GET', headers: { 'user-agent': this.#options.userAgent ?? 'brl container push' } });
    }
    return response;
  }

  /** The Authorization header for a `WWW-Authenticate` challenge: Basic from the credential, or a Bearer token from the challenge's realm. */
  async #answer(challenge: string, doing: string): Promise<string> {
    const scheme = challenge.trim().split(/\s+/)[0]?.toLowerCase();
    const params = Object.fromEntries([...challenge.matchAll(/([A-Za-z_]+)="([^"]*)"/g)].map((match) => [(match[1] as string).toLowerCase(), match[2] as string]));
    const credential = this.#options.credential;
    const basic = credential?.auth ?? (credential?.username === undefined ? undefined : Buffer.from(`${credential.username}:${credential.password ?? ''}`).toString('base64'));
    if (scheme === 'basic') {
      if (basic === undefined) throw this.#authRequired(`asks for a user name and password while ${doing}`);
      return `Basic ${basic}`;
    }
    if (scheme !== 'bearer' || params.realm === undefined || !URL.canParse(params.realm)) throw this.#authRequired(`answered 401 with a challenge brl does not know ("${challenge.slice(0, 100)}")`);
    const realm = new URL(params.realm);
    const scope = params.scope ?? `repository:${this.#options.repository}:pull`;
    let response: Dispatcher.ResponseData;
    if (credential?.identitytoken !== undefined) {
      // Docker's exchange of an identity token: an OAuth2 refresh-token grant posted to the realm.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credential.identitytoken, service: params.service ?? '', scope, client_id: 'brl' });
      response = await this.#send(realm, `getting a token from ${realm.origin}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
    } else {
      if (params.service !== undefined) realm.searchParams.set('service', params.service);
      realm.searchParams.set('scope', scope);
      response = await this.#send(realm, `getting a token from ${realm.origin}`, { method: 'GET', headers: basic === undefined ? {} : { authorization: `Basic ${basic}` } });
    }
    const text = await response.body.text();
    if (response.statusCode !== 200) throw this.#authRequired(`refused a token for ${scope} (${realm.origin} answered ${response.statusCode})`);
    let token: { token?: unknown; access_token?: unknown } = {};
    try {
      token = JSON.parse(text) as typeof token;
    } catch {
      // not JSON: no token in it, said below
    }
    const value = typeof token?.token === 'string' ? token.token : typeof token?.access_token === 'string' ? token.access_token : undefined;
    if (value === undefined) throw this.#authRequired(`${realm.origin} answered without a token`);
    return `Bearer ${value}`;
  }

  #authRequired(what: string): BrlError {
    return new BrlError(`registry ${this.#options.registry} ${what}`, {
      hint: `give credentials for ${new URL(this.#options.baseUrl).host} in settings.container-registry.credentials (username and password, auth, or identitytoken)`,
      exitCode: ExitCode.network,
      code: 'REGISTRY_AUTH_REQUIRED',
    });
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
      ...(status === 401 || status === 403 ? { hint: `check the credentials for ${new URL(this.#options.baseUrl).host} in settings.container-registry.credentials` } : {}),
      exitCode: status === 404 ? ExitCode.notFound : ExitCode.network,
      code: 'REGISTRY_ERROR',
    });
  }
}

function header(response: Dispatcher.ResponseData, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
