// A local HTTP server on 127.0.0.1 that serves files with scripted faults (for fetch and update tests).
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** What goes wrong with one request; a route's faults are used up one per request, in order. */
export type Fault =
  /** Answer with this status and a short text body. */
  | { kind: 'status'; status: number }
  /** Announce the full Content-Length, send `bytes` bytes, then close the connection cleanly. */
  | { kind: 'truncate'; bytes: number; until?: () => Promise<void> }
  /** Send `bytes` bytes of the body, then reset the connection. */
  | { kind: 'drop'; bytes: number; until?: () => Promise<void> }
  /** Send `bytes` bytes, then nothing more while keeping the connection open. */
  | { kind: 'stall'; bytes: number }
  /** Serve the body with every byte inverted (same length, wrong content). */
  | { kind: 'wrong-bytes' }
  /** Wait `ms` before sending the response headers. */
  | { kind: 'slow-headers'; ms: number }
  /** Send the body in `chunkBytes` pieces with `ms` between them. */
  | { kind: 'slow-body'; ms: number; chunkBytes: number }
  /** Answer a Range request with the whole body (200), as servers without Range support do. */
  | { kind: 'ignore-range' };

export interface RouteOptions {
  /** Faults for the next requests, one each; later requests are served normally. */
  faults?: Fault[];
  /** Honour `Range` (default true); false answers every request with the whole body. */
  range?: boolean;
  contentType?: string;
  /** Sent as ETag; defaults to a strong ETag derived from the body. */
  etag?: string;
  /** Delay before every response, like a distant server's round trip. */
  latencyMs?: number;
}

export interface LoggedRequest {
  method: string;
  path: string;
  range: string | undefined;
  ifRange: string | undefined;
  userAgent: string | undefined;
  /** 0 until the server has answered. */
  status: number;
  fault: Fault['kind'] | undefined;
}

interface Route {
  body: Buffer;
  options: RouteOptions;
  faults: Fault[];
}

export class FaultServer {
  readonly requests: LoggedRequest[] = [];
  /** The most requests that were being answered at the same time. */
  peakConcurrentRequests = 0;
  #activeRequests = 0;
  readonly #routes = new Map<string, Route>();
  readonly #sockets = new Set<Socket>();
  readonly #server: Server;
  #port = 0;

  private constructor() {
    this.#server = createServer((request, response) => {
      this.#activeRequests++;
      this.peakConcurrentRequests = Math.max(this.peakConcurrentRequests, this.#activeRequests);
      response.once('close', () => this.#activeRequests--);
      this.#handle(request, response).catch((error: unknown) => {
        response.destroy(error instanceof Error ? error : new Error(String(error)));
      });
    });
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  static async start(): Promise<FaultServer> {
    const server = new FaultServer();
    await new Promise<void>((resolve) => server.#server.listen(0, '127.0.0.1', resolve));
    server.#port = (server.#server.address() as AddressInfo).port;
    return server;
  }

  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:43210`. */
  get origin(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  url(path: string): string {
    return `${this.origin}${path.startsWith('/') ? path : `/${path}`}`;
  }

  /** Serves `body` at `path` (URL-encoded as a client sends it); replaces an earlier route. */
  serve(path: string, body: Buffer | string, options: RouteOptions = {}): string {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    this.#routes.set(path, { body: bytes, options, faults: [...(options.faults ?? [])] });
    return this.url(path);
  }

  /** Queues more faults on an existing route. */
  addFaults(path: string, ...faults: Fault[]): void {
    const route = this.#routes.get(path);
    if (route === undefined) throw new Error(`no route ${path}`);
    route.faults.push(...faults);
  }

  requestsFor(path: string): LoggedRequest[] {
    return this.requests.filter((request) => request.path === path);
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    const route = this.#routes.get(path);
    const fault = route?.faults.shift();
    // Logged on arrival, so a request the client gave up on still shows; `status` is set when answered.
    const entry: LoggedRequest = {
      method: request.method ?? 'GET',
      path,
      range: header(request, 'range'),
      ifRange: header(request, 'if-range'),
      userAgent: header(request, 'user-agent'),
      status: 0,
      fault: fault?.kind,
    };
    this.requests.push(entry);
    const log = (status: number): void => {
      entry.status = status;
    };
    if (route === undefined) {
      log(404);
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (fault?.kind === 'status') {
      log(fault.status);
      response.writeHead(fault.status, { 'content-type': 'text/plain' }).end(`injected ${fault.status}\n`);
      return;
    }
    if (route.options.latencyMs !== undefined) await sleep(route.options.latencyMs);
    if (fault?.kind === 'slow-headers') await sleep(fault.ms);

    const etag = route.options.etag ?? `"${createHash('sha256').update(route.body).digest('hex').slice(0, 16)}"`;
    let body = fault?.kind === 'wrong-bytes' ? Buffer.from(route.body.map((byte) => 255 - byte)) : route.body;
    let status = 200;
    const headers: Record<string, string> = {
      'content-type': route.options.contentType ?? 'application/octet-stream',
      etag,
    };
    const rangeAllowed = route.options.range !== false && fault?.kind !== 'ignore-range';
    if (rangeAllowed) headers['accept-ranges'] = 'bytes';
    const range = /^bytes=(\d+)-$/.exec(header(request, 'range') ?? '');
    const ifRange = header(request, 'if-range');
    if (rangeAllowed && range !== null && (ifRange === undefined || ifRange === etag)) {
      const start = Number(range[1]);
      if (start >= body.length) {
        log(416);
        response.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
      status = 206;
      body = body.subarray(start);
    }
    headers['content-length'] = String(body.length);
    log(status);
    if (request.method === 'HEAD') {
      response.writeHead(status, headers).end();
      return;
    }
    response.writeHead(status, headers);

    switch (fault?.kind) {
      case 'truncate':
        await written(response, body.subarray(0, fault.bytes));
        await (fault.until?.() ?? sleep(settleMs));
        response.socket?.end();
        return;
      case 'drop':
        await written(response, body.subarray(0, fault.bytes));
        await (fault.until?.() ?? sleep(settleMs));
        response.socket?.resetAndDestroy();
        return;
      case 'stall':
        response.write(body.subarray(0, fault.bytes));
        return;
      case 'slow-body':
        for (let offset = 0; offset < body.length; offset += fault.chunkBytes) {
          if (response.destroyed) return;
          response.write(body.subarray(offset, offset + fault.chunkBytes));
          await sleep(fault.ms);
        }
        response.end();
        return;
      default:
        response.end(body);
    }
  }
}

// Pause before cutting a connection, so the client has likely stored what it received (as after a
// real outage); a fault's `until` replaces the pause when a test needs certainty.
const settleMs = 50;

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function written(response: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve) => response.write(chunk, () => resolve()));
}
