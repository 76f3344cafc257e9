// A static HTTP server for a repository directory: GET/HEAD with single byte ranges, nothing else.
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BrlError, ExitCode, errnoCode, fileError } from '../core/errors.ts';

export interface ServeOptions {
  port?: number;
  host?: string;
  /** Called once per request after it completes. */
  onRequest?: (line: { method: string; path: string; status: number; bytes: number }) => void;
}

export interface RunningServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

export async function serveDirectory(rootDir: string, options: ServeOptions = {}): Promise<RunningServer> {
  const root = resolve(rootDir);
  // Serving a mistyped path would answer 404 to every request instead of failing here.
  const rootStat = await stat(root).catch((error: unknown) => {
    throw fileError(error, rootDir, { what: 'repository directory', hint: 'build one first with brl repo build, or check the path' }) ?? error;
  });
  if (!rootStat.isDirectory()) {
    throw new BrlError(`repository directory ${rootDir} is a file, not a directory`, { exitCode: ExitCode.badInput, code: 'NOT_A_DIRECTORY' });
  }
  // Containment is checked on real paths, so a symlink inside the repository cannot serve a file outside it.
  const realRoot = await realpath(root);
  const server = createServer((request, response) => {
    handle(realRoot, request, response, options).catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', (error) => {
      const code = errnoCode(error);
      if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
        reject(new BrlError(`cannot listen on ${options.host ?? '127.0.0.1'}:${options.port ?? 0}: ${code}`, {
          hint: code === 'EADDRINUSE' ? 'choose another --port (0 picks a free one)' : 'choose another --port or --host',
          exitCode: ExitCode.usage,
          code: 'LISTEN_FAILED',
        }));
      } else {
        reject(error);
      }
    });
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolvePromise());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const host = options.host ?? '127.0.0.1';
  return {
    server,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    close: () => new Promise<void>((done) => {
      server.closeAllConnections();
      server.close(() => done());
    }),
  };
}

async function handle(root: string, request: IncomingMessage, response: ServerResponse, options: ServeOptions): Promise<void> {
  const method = request.method ?? 'GET';
  const finish = (status: number, bytes = 0) => options.onRequest?.({ method, path: request.url ?? '', status, bytes });
  if (method !== 'GET' && method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD' }).end();
    return finish(405);
  }
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
  } catch {
    response.writeHead(400).end();
    return finish(400);
  }
  const path = resolve(join(root, pathname));
  if (path !== root && !path.startsWith(root + sep)) {
    response.writeHead(404).end();
    return finish(404);
  }
  const realPath = await realpath(path).catch(() => undefined);
  if (realPath === undefined || !realPath.startsWith(root + sep)) {
    response.writeHead(404).end();
    return finish(404);
  }
  const info = await stat(realPath).catch(() => undefined);
  if (!info?.isFile()) {
    response.writeHead(404).end();
    return finish(404);
  }
  const size = info.size;
  const headers: Record<string, string | number> = {
    'accept-ranges': 'bytes',
    'content-type': path.endsWith('.json') ? 'application/json' : 'application/octet-stream',
    'last-modified': info.mtime.toUTCString(),
    etag: `"${size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`,
  };
  let start = 0;
  let end = size - 1;
  let status = 200;
  const range = request.headers.range;
  if (range !== undefined) {
    const parsed = parseRange(range, size);
    if (parsed === 'unsatisfiable') {
      response.writeHead(416, { 'content-range': `bytes */${size}`, 'accept-ranges': 'bytes' }).end();
      return finish(416);
    }
    if (parsed) {
      [start, end] = parsed;
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${size}`;
    }
  }
  const length = size === 0 ? 0 : end - start + 1;
  headers['content-length'] = length;
  response.writeHead(status, headers);
  if (method === 'HEAD' || length === 0) {
    response.end();
    return finish(status);
  }
  await pipeline(createReadStream(realPath, { start, end }), response);
  finish(status, length);
}

/**
 * One `bytes=a-b`, `bytes=a-` or `bytes=-n` range. Multiple ranges and malformed headers are
 * ignored (a full 200 answer is always allowed); a range past the end is unsatisfiable.
 */
export function parseRange(header: string, size: number): [number, number] | 'unsatisfiable' | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) return 'unsatisfiable';
    return [Math.max(0, size - suffix), size - 1];
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size) return 'unsatisfiable';
  if (end < start) return undefined;
  return [start, end];
}
