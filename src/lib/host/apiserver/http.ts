// Small HTTP pieces the routes share: errors with a status, replies, bounded body reading, query inputs.
import type { IncomingMessage } from 'node:http';

/** A failure with the status it maps to; the message is the plain-text body, as upstream sends it. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

export interface Reply {
  status: number;
  /** JSON body; absent for 204. */
  json?: unknown;
  /** JSON already serialized (cached answers). */
  jsonText?: string;
  text?: string;
  contentType?: string;
}

export const NO_CONTENT: Reply = { status: 204 };

export function ok(json: unknown): Reply {
  return { status: 200, json };
}

export type Query = ReadonlyMap<string, string>;

export interface RequestTarget {
  pathname: string;
  /** `?…` as `URL.search` gives it (empty without a query); with the path, the response cache's key. */
  search: string;
  query: Map<string, string>;
}

/** Paths and queries that need neither decoding nor dot-segment resolution: what API clients send. */
const PLAIN_TARGET = /^(\/(?:[\w-][\w/-]*)?)(?:\?([\w.,=&-]*))?$/;

/**
 * Splits a request target into path and query (first value of each name wins, as upstream). Plain
 * targets are split by hand, which WHATWG URL parsing would leave unchanged; anything else (escapes,
 * `+`, dot segments, a leading `//`, fragments) goes through `URL`.
 */
export function parseTarget(target: string): RequestTarget {
  const query = new Map<string, string>();
  const plain = PLAIN_TARGET.exec(target);
  if (plain !== null) {
    const text = plain[2] ?? '';
    for (const pair of text.split('&')) {
      if (pair.length === 0) continue;
      const equals = pair.indexOf('=');
      const name = equals < 0 ? pair : pair.slice(0, equals);
      if (!query.has(name)) query.set(name, equals < 0 ? '' : pair.slice(equals + 1));
    }
    return { pathname: plain[1] as string, search: text.length > 0 ? `?${text}` : '', query };
  }
  const url = new URL(target, 'http://localhost');
  for (const [name, value] of url.searchParams) if (!query.has(name)) query.set(name, value);
  return { pathname: url.pathname, search: url.search, query };
}

/** An optional input: absent → undefined; present but empty → 400, as upstream. */
export function optionalInput(query: Query, name: string): string | undefined {
  const value = query.get(name);
  if (value === undefined) return undefined;
  if (value.length === 0) throw new HttpError(400, `Input '${name}' cannot be empty`);
  return value;
}

export function requiredInput(query: Query, name: string): string {
  const value = optionalInput(query, name);
  if (value === undefined) throw new HttpError(400, `Missing required input '${name}'`);
  return value;
}

export function listInput(value: string): string[] {
  return value.split(',').filter((item) => item.length > 0);
}

/**
 * Reads the body up to `limit` bytes. Over the limit → 413; the rest is drained rather than
 * the connection reset, so the client gets to read the answer.
 */
export function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers['content-length'] ?? '0');
    const tooLarge = (): HttpError =>
      new HttpError(413, `Request body is larger than the limit of ${limit} bytes`, { connection: 'close' });
    if (declared > limit) {
      request.resume();
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    request.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      if (!failed) resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    });
    request.on('error', (error) => {
      if (!failed) reject(error);
    });
  });
}

/** Parses a JSON body; bad UTF-8 or JSON → 400 with the parser's reason. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

export function parseJsonBody(body: Buffer): unknown {
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    throw new HttpError(400, 'Request body is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `Unable to parse JSON request body: ${(error as Error).message}`);
  }
}
