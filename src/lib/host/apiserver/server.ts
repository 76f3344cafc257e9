// The apiserver: HTTP/1.1 on a Unix socket (mode 0660, the API group), serving the route table.
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmod, chown, lstat, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { errnoCode, fileError } from '../../core/errors.ts';
import { makeParentDir } from '../../core/fs.ts';
import { Datastore } from '../datastore/store.ts';
import { hostPaths } from '../paths.ts';
import { readOsInfo, type OsInfo } from '../os-release.ts';
import { ApplyRunner } from '../render/runner.ts';
import { SettingsModel } from '../settings/model.ts';
import { HttpError, parseTarget, readBody, type Reply } from './http.ts';
import { ROUTES, type Method, type RouteContext } from './routes.ts';
import { UpdateController } from './updates.ts';
import { ExecTargetError, type ExecLauncher } from '../exec/launcher.ts';
import { attachExec, type ExecEndpoint } from '../exec/upgrade.ts';

export interface ApiServerOptions {
  root: string;
  /** Default `<root>/run/api.sock`. */
  socketPath?: string;
  /** Group owning the socket (upstream: 274, `api`); unchanged when absent. */
  socketGid?: number;
  /** Default `<root>/var/lib/bottlerocket/datastore` (the directory holding `current`). */
  datastoreBase?: string;
  /** Request bodies above this many bytes get 413. */
  maxBodyBytes?: number;
  updogCommand?: readonly string[];
  /** The OS disk whose GPT says whether an update failed to boot; default: the booted disk. */
  osDisk?: string;
  rebootCommand?: readonly string[];
  rollbackCommand?: readonly string[];
  /** Log lines (requests failing with 5xx); stderr by default. */
  log?: (line: string) => void;
  /** Runs `/exec` commands in host containers; without one, every `/exec` session is refused. */
  execLauncher?: ExecLauncher;
}

/** A host without a container runtime for host containers has nothing to exec into. */
const NO_EXEC: ExecLauncher = {
  start: (request) => Promise.reject(new ExecTargetError(`cannot exec in '${request.target}': this host runs no host containers`)),
};

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const CACHE_LIMIT = 256;
/**
 * How long close() lets requests in flight finish. `systemctl reboot` returns only once its job is
 * queued, which took over 5 s on a guest sharing 2 cores with two other VMs (the client then got
 * half an answer); systemd itself waits 90 s before it kills the service.
 */
const CLOSE_GRACE_MS = 30_000;

export class ApiServer {
  private readonly cache = new Map<string, { generation: number; body: string }>();
  readonly socketPath: string;
  readonly context: RouteContext;
  private readonly server: Server;
  private readonly maxBodyBytes: number;
  private readonly log: (line: string) => void;
  private exec: ExecEndpoint | undefined;

  private constructor(
    socketPath: string,
    context: RouteContext,
    server: Server,
    maxBodyBytes: number,
    log: (line: string) => void,
  ) {
    this.socketPath = socketPath;
    this.context = context;
    this.server = server;
    this.maxBodyBytes = maxBodyBytes;
    this.log = log;
  }

  get store(): Datastore {
    return this.context.store;
  }

  get applier(): ApplyRunner {
    return this.context.applier;
  }

  get updates(): UpdateController {
    return this.context.updates;
  }

  static async start(options: ApiServerOptions): Promise<ApiServer> {
    const paths = hostPaths(options.root);
    const model = await SettingsModel.load(paths.root);
    const store = await Datastore.open(options.datastoreBase ?? paths.datastoreBase, {
      validateCommit: (settings) => model.checkCommitted(settings),
    });
    let osCache: OsInfo | undefined;
    const os = async (): Promise<OsInfo> => (osCache ??= await readOsInfo(paths.osRelease));
    const context: RouteContext = {
      store,
      model,
      root: paths.root,
      os,
      applier: new ApplyRunner(store, paths.root, async () => ({ ...(await os()) })),
      updates: new UpdateController({
        root: paths.root,
        statusPath: paths.updateStatus,
        configPath: paths.updateConfig,
        updogCommand: options.updogCommand ?? ['updog'],
        os,
        ...(options.osDisk === undefined ? {} : { disk: options.osDisk }),
        log: (line) => log(line),
      }),
      // Bottlerocket asks logind for inhibitors over D-Bus (--check-inhibitors=yes). A brl host runs
      // neither D-Bus nor logind, so there is nothing to inhibit and systemctl reaches PID 1 over
      // its private socket.
      rebootCommand: options.rebootCommand ?? ['/bin/systemctl', 'reboot', '--check-inhibitors=no'],
      rollbackCommand: options.rollbackCommand ?? ['/usr/bin/signpost', 'rollback-to-inactive'],
    };
    const socketPath = options.socketPath ?? paths.socket;
    const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    const server = createServer({ keepAlive: true });
    const api = new ApiServer(socketPath, context, server, options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, log);
    server.on('request', (request, response) => api.handle(request, response));
    api.exec = attachExec(server, options.execLauncher ?? NO_EXEC, { log });
    await makeParentDir(socketPath);
    await removeStaleSocket(socketPath);
    await new Promise<void>((resolve, reject) => {
      const fail = (error: Error): void => reject(fileError(error, socketPath, { what: 'API socket' }) ?? error);
      server.once('error', fail);
      server.listen(socketPath, () => {
        server.off('error', fail);
        resolve();
      });
    });
    await chmod(socketPath, 0o660);
    if (options.socketGid !== undefined) await chown(socketPath, process.getuid?.() ?? 0, options.socketGid);
    notifySystemd();
    return api;
  }

  /**
   * Stops taking requests and lets the ones in flight answer first (at most CLOSE_GRACE_MS): a
   * `POST /actions/reboot` is answered after systemd has started the shutdown that stops this
   * server, and cutting its connection then left the client with half a response. A connection
   * is closed once it is idle, that is once its response is written; nothing is counted per
   * request.
   */
  async close(): Promise<void> {
    this.exec?.close();
    await new Promise<void>((resolve) => {
      let closed = false;
      this.server.close(() => {
        closed = true;
        resolve();
      });
      const deadline = Date.now() + CLOSE_GRACE_MS;
      const sweep = (): void => {
        if (closed) return;
        if (Date.now() >= deadline) {
          this.server.closeAllConnections();
          return;
        }
        this.server.closeIdleConnections();
        setTimeout(sweep, 20).unref();
      };
      sweep();
    });
    await this.applier.idle();
    await this.store.settle();
    await this.updates.settled();
    await unlink(this.socketPath).catch(() => undefined);
  }

  /** Answers at once when the route answered without waiting; a promise only where a route waits. */
  private handle(request: IncomingMessage, response: ServerResponse): void {
    let reply: Reply | Promise<Reply>;
    try {
      reply = this.dispatch(request);
    } catch (error) {
      this.fail(request, response, error);
      return;
    }
    if (reply instanceof Promise) {
      reply.then(
        (answer) => send(response, answer, {}),
        (error: unknown) => this.fail(request, response, error),
      );
    } else {
      send(response, reply, {});
    }
  }

  private fail(request: IncomingMessage, response: ServerResponse, error: unknown): void {
    request.resume();
    if (error instanceof HttpError) {
      send(response, { status: error.status, text: error.message }, { ...error.headers });
      return;
    }
    this.log(`${request.method} ${request.url}: ${(error as Error).stack ?? String(error)}`);
    send(response, { status: 500, text: (error as Error).message }, {});
  }

  private dispatch(request: IncomingMessage): Reply | Promise<Reply> {
    const { pathname, search, query } = parseTarget(request.url ?? '/');
    const methods = ROUTES[pathname];
    if (!methods) throw new HttpError(404, `Not found: ${pathname}`);
    const route = methods[request.method as Method];
    if (!route) {
      throw new HttpError(405, `Method ${request.method} is not allowed on ${pathname}`, {
        allow: Object.keys(methods).join(', '),
      });
    }
    const input = { query, body: () => readBody(request, this.maxBodyBytes) };
    if (!route.cacheable) return route.handler(this.context, input);
    const cacheKey = `${pathname}${search}`;
    const cached = this.cache.get(cacheKey);
    if (cached && cached.generation === this.store.generation) return { status: 200, jsonText: cached.body };
    return this.cached(cacheKey, this.store.generation, route.handler(this.context, input));
  }

  private async cached(cacheKey: string, generation: number, pending: Reply | Promise<Reply>): Promise<Reply> {
    const reply = await pending;
    if (reply.status === 200 && reply.json !== undefined && generation === this.store.generation) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      const body = JSON.stringify(reply.json);
      this.cache.set(cacheKey, { generation, body });
      return { status: 200, jsonText: body };
    }
    return reply;
  }
}

/** Writes a reply; `headers` is handed to writeHead as it is (Node's fast path when no header was set before). */
function send(response: ServerResponse, reply: Reply, headers: Record<string, string>): void {
  const body = reply.jsonText ?? (reply.json === undefined ? reply.text : JSON.stringify(reply.json));
  if (body === undefined) {
    response.writeHead(reply.status, headers);
    response.end();
    return;
  }
  headers['content-type'] = reply.json !== undefined || reply.jsonText !== undefined ? 'application/json' : (reply.contentType ?? 'text/plain; charset=utf-8');
  headers['content-length'] = String(Buffer.byteLength(body));
  response.writeHead(reply.status, headers);
  response.end(body);
}

/**
 * A socket file left by a dead server is removed; a live one means another apiserver owns this
 * datastore, and two writers would defeat the commit lock, so that is refused.
 */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    const stats = await lstat(path);
    if (!stats.isSocket()) return;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw error;
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new SocketInUseError(`another apiserver is already listening on ${path}`);
  await unlink(path);
}

export class SocketInUseError extends Error {
  override readonly name = 'SocketInUseError';
}

/** `Type=notify` units wait for READY=1; outside systemd there is no NOTIFY_SOCKET and nothing to do. */
function notifySystemd(): void {
  if (!process.env.NOTIFY_SOCKET) return;
  const child = spawn('systemd-notify', ['--ready'], { stdio: 'ignore' });
  child.on('error', () => undefined);
}
