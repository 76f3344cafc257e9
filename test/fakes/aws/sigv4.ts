// SigV4 as AWS checks it: the access key must be one the fake knows, and the signature must be the one
// @smithy/signature-v4 computes with that key's secret over what the client says it signed.
import { createHash, createHmac, timingSafeEqual, type Hash, type Hmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { SourceData } from '@smithy/types';

/** The only credentials the fakes accept. */
export const fakeCredentials = { accessKeyId: 'AKIAFAKEFAKEFAKEFAKE', secretAccessKey: 'fake-secret-key' };

export interface SigV4Scope {
  accessKeyId: string;
  region: string;
  service: string;
}

/** Why a request was refused; each fake turns it into its service's own error. */
export type SigV4Failure = 'missing' | 'unknown-key' | 'signature-mismatch';

export type SigV4Result = { ok: true; scope: SigV4Scope } | { ok: false; failure: SigV4Failure; scope?: SigV4Scope };

export const sigV4Messages: Record<SigV4Failure, string> = {
  missing: 'Request is missing Authentication Token',
  'unknown-key': 'The security token included in the request is invalid.',
  'signature-mismatch':
    'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
};

const authorizationPattern = /^AWS4-HMAC-SHA256 Credential=([^/,]+)\/(\d{8})\/([^/,]+)\/([^/,]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

/** The SHA-256 constructor the signer wants (a hash, or an HMAC when given a key), on node:crypto. */
class Sha256 {
  readonly #hash: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.#hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.#hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.#hash.digest();
  }
}

function bytes(data: SourceData): string | Buffer {
  if (typeof data === 'string') return data;
  return ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data);
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/** `YYYYMMDDTHHMMSSZ` as a Date. */
function amzDate(text: string): Date | undefined {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  return match ? new Date(`${match[1]}-${match[2]}-${match[3]}T${match[4]}:${match[5]}:${match[6]}Z`) : undefined;
}

export async function verifySigV4(request: IncomingMessage, body: Buffer): Promise<SigV4Result> {
  const match = authorizationPattern.exec(header(request, 'authorization') ?? '');
  const signingDate = amzDate(header(request, 'x-amz-date') ?? '');
  if (!match || !signingDate) return { ok: false, failure: 'missing' };
  const [, accessKeyId, shortDate, region, service, signedHeaderList, signature] = match as unknown as string[];
  const scope: SigV4Scope = { accessKeyId: accessKeyId!, region: region!, service: service! };
  if (accessKeyId !== fakeCredentials.accessKeyId) return { ok: false, failure: 'unknown-key', scope };
  const signedHeaders = signedHeaderList!.split(';');
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) {
    const value = header(request, name);
    if (value === undefined) return { ok: false, failure: 'signature-mismatch', scope };
    headers[name] = value;
  }
  const url = new URL(request.url ?? '/', 'http://fake');
  const query: Record<string, string | string[]> = {};
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    query[key] = values.length === 1 ? (values[0] as string) : values;
  }
  const rawPath = (request.url ?? '/').split('?')[0] as string;
  const signer = new SignatureV4({ credentials: fakeCredentials, region: scope.region, service: scope.service, sha256: Sha256, uriEscapePath: true });
  const expected = await signer.sign(
    { method: request.method ?? 'GET', protocol: 'http:', hostname: url.hostname, path: rawPath, query, headers, body },
    { signingDate, signingRegion: scope.region, signingService: scope.service, signableHeaders: new Set(signedHeaders), unsignableHeaders: new Set() },
  );
  const expectedSignature = /Signature=([0-9a-f]{64})$/.exec(String(expected.headers.authorization))?.[1] ?? '';
  const scopeDate = signingDate.toISOString().slice(0, 10).replaceAll('-', '');
  if (shortDate !== scopeDate || expectedSignature.length !== signature!.length || !timingSafeEqual(Buffer.from(expectedSignature), Buffer.from(signature!))) {
    return { ok: false, failure: 'signature-mismatch', scope };
  }
  return { ok: true, scope };
}
