// HTTP GETs for updog: query parameters on every request, connect and idle timeouts, retries with
// back-off that reset on progress, and Range resume so a dropped connection continues a body.
import { request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { BrlError, ExitCode } from '../core/errors.ts';

export interface TransportOptions {
  /** Query parameters added (sorted by name) to every request; read at request time. */
  query: () => Record<string, string>;
  connectTimeoutMs: number;
  /** Longest wait for the next byte; there is no total timeout. */
  idleTimeoutMs: number;
  /**
   * Lowest average rate (bytes per second) over any `lowSpeedTimeMs` of a body, curl's
   * --speed-limit/--speed-time: a server dripping a byte now and then never trips the idle timeout.
   */
  lowSpeedLimit: number;
  lowSpeedTimeMs: number;
  /** Consecutive attempts that receive no byte before giving up. */
  attemptsWithoutProgress: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  log: (level: 'debug' | 'info' | 'warn', message: string) => void;
  /** `https_proxy` of updog.toml: HTTPS requests tunnel through it (CONNECT), as upstream's HTTPS_PROXY. */
  httpsProxy?: string;
  /** Hosts (suffixes, `*`) reached directly even with a proxy: `no_proxy` joined as NO_PROXY. */
  noProxy?: readonly string[];
}

export const defaultTransportOptions: TransportOptions = {
  query: () => ({}),
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  lowSpeedLimit: 1024,
  lowSpeedTimeMs: 30_000,
  attemptsWithoutProgress: 4,
  initialBackoffMs: 100,
  maxBackoffMs: 1000,
  log: () => undefined,
};

/** A non-retryable HTTP answer (4xx other than 408/429), e.g. 404 for a root version that does not exist. */
export class HttpStatusError extends Error {
  override readonly name = 'HttpStatusError';
  readonly statusCode: number;
  readonly url: string;
  constructor(url: string, statusCode: number) {
    super(`GET ${url} answered HTTP ${statusCode}`);
    this.statusCode = statusCode;
    this.url = url;
  }
}

/** A body that breaks a promise the caller made (declared length), not worth retrying. */
export class BodyLengthError extends Error {
  override readonly name = 'BodyLengthError';
}

export function withQuery(url: string, params: Record<string, string>): string {
  const parsed = new URL(url);
  for (const name of Object.keys(params).sort()) parsed.searchParams.set(name, params[name]!);
  return parsed.toString();
}

function retryable(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

const proxyAgents = new Map<string, HttpsAgent>();

/** Node's built-in proxy support (CONNECT tunnels, NO_PROXY matching) for one proxy setting. */
function httpsProxyAgent(options: TransportOptions): HttpsAgent | false {
  if (!options.httpsProxy) return false;
  const noProxy = (options.noProxy ?? []).join(',');
  const key = `${options.httpsProxy} ${noProxy}`;
  let agent = proxyAgents.get(key);
  if (!agent) {
    agent = new HttpsAgent({ proxyEnv: { HTTPS_PROXY: options.httpsProxy, NO_PROXY: noProxy } });
    proxyAgents.set(key, agent);
  }
  return agent;
}

function get(url: string, headers: Record<string, string>, options: TransportOptions): Promise<{ request: ClientRequest; response: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const parsed = new URL(url);
    const send = parsed.protocol === 'https:' ? httpsRequest : parsed.protocol === 'http:' ? httpRequest : undefined;
    if (!send) {
      reject(new BrlError(`${url}: only http and https URLs are supported`, { exitCode: ExitCode.badInput, code: 'BAD_URL' }));
      return;
    }
    const agent = parsed.protocol === 'https:' ? httpsProxyAgent(options) : false;
    const request = send(parsed, { headers: { 'user-agent': 'brl-updog', ...headers }, agent });
    const connectTimer = setTimeout(() => request.destroy(new Error(`no connection to ${parsed.host} within ${options.connectTimeoutMs} ms`)), options.connectTimeoutMs);
    request.on('socket', (socket) => {
      socket.once('connect', () => clearTimeout(connectTimer));
    });
    request.setTimeout(options.idleTimeoutMs, () => request.destroy(new Error(`no data from ${parsed.host} for ${options.idleTimeoutMs} ms`)));
    request.once('response', (response) => {
      clearTimeout(connectTimer);
      resolve({ request, response });
    });
    request.once('error', (error) => {
      clearTimeout(connectTimer);
      reject(error);
    });
    request.end();
  });
}

export interface StreamOptions {
  /** Exact body length promised by signed metadata; more bytes are an error, fewer a retry. */
  expectedLength?: number;
  /** Refuse bodies longer than this (metadata size limits). */
  maxLength?: number;
  /** Only the first bytes: ranges end there and the stream stops there. */
  prefixLength?: number;
  /** The body's first bytes are already at hand (a previous run's): start at this offset. */
  startAt?: number;
}

/**
 * Yields the body of `url` from byte 0 to the end exactly once, whatever happens to connections:
 * after a failure it resumes with `Range: bytes=<received>-`; if the server ignores the range, the
 * re-sent prefix is skipped so the consumer sees one continuous body.
 */
export async function* streamBody(url: string, options: TransportOptions, stream: StreamOptions = {}): AsyncGenerator<Buffer> {
  let received = stream.startAt ?? 0;
  let failures = 0;
  let backoff = options.initialBackoffMs;
  const limit = stream.expectedLength ?? stream.maxLength;
  for (;;) {
    const requestUrl = withQuery(url, options.query());
    let progressed = false;
    let connection: { request: ClientRequest; response: IncomingMessage } | undefined;
    try {
      const rangeEnd = stream.prefixLength === undefined ? '' : String(stream.prefixLength - 1);
      connection = await get(requestUrl, received > 0 || rangeEnd !== '' ? { range: `bytes=${received}-${rangeEnd}` } : {}, options);
      const { response } = connection;
      const status = response.statusCode ?? 0;
      if (status !== 200 && status !== 206) {
        response.resume();
        if (!retryable(status)) throw new HttpStatusError(url, status);
        throw new Error(`HTTP ${status}`);
      }
      let skip = 0;
      if (status === 206) {
        const start = /^bytes (\d+)-/.exec(response.headers['content-range'] ?? '');
        if (!start || Number(start[1]) !== received) throw new Error(`server resumed at ${start?.[1] ?? '?'} instead of byte ${received}`);
      } else {
        skip = received;
        if (received > 0) options.log('debug', `${url}: server ignored Range, skipping ${received} bytes already received`);
      }
      let windowStart = Date.now();
      let windowBytes = 0;
      for await (const piece of response as AsyncIterable<Buffer>) {
        let chunk = piece;
        windowBytes += piece.length;
        const elapsed = Date.now() - windowStart;
        if (elapsed >= options.lowSpeedTimeMs) {
          const rate = (windowBytes * 1000) / elapsed;
          if (rate < options.lowSpeedLimit) {
            throw new BrlError(`${url}: the server sent ${windowBytes} bytes in ${(elapsed / 1000).toFixed(0)} s, below the ${options.lowSpeedLimit} bytes/s updog waits for; giving up`, {
              hint: 'the update server or the network to it is stalling; the next check or update starts again',
              exitCode: ExitCode.network,
              code: 'DOWNLOAD_TOO_SLOW',
            });
          }
          windowStart = Date.now();
          windowBytes = 0;
        }
        if (skip > 0) {
          const dropped = Math.min(skip, chunk.length);
          skip -= dropped;
          chunk = chunk.subarray(dropped);
          if (chunk.length === 0) continue;
        }
        if (stream.prefixLength !== undefined && received + chunk.length >= stream.prefixLength) {
          yield chunk.subarray(0, stream.prefixLength - received);
          return;
        }
        if (limit !== undefined && received + chunk.length > limit) {
          throw new BodyLengthError(`${url}: body is longer than the ${limit} bytes ${stream.expectedLength !== undefined ? 'the signed metadata declares' : 'allowed'}`);
        }
        received += chunk.length;
        progressed = true;
        failures = 0;
        backoff = options.initialBackoffMs;
        yield chunk;
      }
      if (stream.expectedLength !== undefined && received < stream.expectedLength) {
        throw new Error(`connection closed after ${received} of ${stream.expectedLength} bytes`);
      }
      return;
    } catch (error) {
      if (error instanceof HttpStatusError || error instanceof BodyLengthError || error instanceof BrlError) throw error;
      failures = progressed ? 1 : failures + 1;
      const reason = error instanceof Error ? error.message : String(error);
      if (failures >= options.attemptsWithoutProgress) {
        throw new BrlError(`could not download ${url}: ${reason} (${failures} attempts in a row without progress)`, {
          hint: 'check that the update server is reachable (metadata_base_url / targets_base_url in /etc/updog.toml) and retry',
          exitCode: ExitCode.network,
          code: 'DOWNLOAD_FAILED',
          cause: error,
        });
      }
      options.log('warn', `${url}: ${reason}; retrying from byte ${received} in ${backoff} ms`);
      await sleep(backoff);
      backoff = Math.min(backoff * 1.5, options.maxBackoffMs);
    } finally {
      connection?.request.destroy();
    }
  }
}

/**
 * The first `length` bytes of a body (fewer if it is shorter), asked for with a Range request so
 * the server sends little; retried like any other request.
 */
export async function getPrefix(url: string, options: TransportOptions, length: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of streamBody(url, options, { prefixLength: length })) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** A whole (small) body in memory, at most `maxLength` bytes. */
export async function getBytes(url: string, options: TransportOptions, maxLength: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of streamBody(url, options, { maxLength })) chunks.push(chunk);
  return Buffer.concat(chunks);
}
