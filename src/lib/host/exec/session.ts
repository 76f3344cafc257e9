// One `/exec` connection on the server: Initialize, then stdin and resizes in, output and Capacity out,
// and a close with the exit code as its reason (spec host-api §7.4).
import type { RawData, WebSocket } from 'ws';
import { ExecTargetError, type ExecLauncher, type ExecProcess } from './launcher.ts';
import {
  CAPACITY_EVERY,
  CloseCode,
  encodeCapacity,
  MAX_MESSAGES_OUTSTANDING,
  parseClientMessage,
  ProtocolError,
  type InitializeRequest,
} from './messages.ts';

export interface SessionOptions {
  pingIntervalMs?: number;
  /** A client silent (no message, no pong) this long is dropped. */
  silenceLimitMs?: number;
  log?: (line: string) => void;
}

/** Output waits while this much is queued towards the client. */
const OUTPUT_HIGH_WATER = 1024 * 1024;
/** A close reason is at most 123 bytes (RFC 6455 §5.5). */
const REASON_BYTES = 123;

export function runExecSession(socket: WebSocket, launcher: ExecLauncher, options: SessionOptions = {}): void {
  const session = new ExecSession(socket, launcher, options);
  session.begin();
}

class ExecSession {
  private child: ExecProcess | undefined;
  private childReady: Promise<ExecProcess | undefined> | undefined;
  private received = 0;
  private written = 0;
  /** stdin writes are chained so that they land in order and EOF comes after the last. */
  private stdinChain: Promise<void> = Promise.resolve();
  private lastHeard = Date.now();
  private pinger: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly socket: WebSocket;
  private readonly launcher: ExecLauncher;
  private readonly options: SessionOptions;

  constructor(socket: WebSocket, launcher: ExecLauncher, options: SessionOptions) {
    this.socket = socket;
    this.launcher = launcher;
    this.options = options;
  }

  begin(): void {
    const interval = this.options.pingIntervalMs ?? 2000;
    const limit = this.options.silenceLimitMs ?? 10_000;
    this.pinger = setInterval(() => {
      if (Date.now() - this.lastHeard > limit) {
        this.socket.terminate();
        return;
      }
      this.socket.ping();
    }, interval);
    this.socket.on('pong', () => (this.lastHeard = Date.now()));
    this.socket.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    this.socket.on('close', () => this.onClose());
    this.socket.on('error', () => undefined);
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    this.lastHeard = Date.now();
    try {
      if (isBinary) this.onStdin(toBuffer(data));
      else this.onControl(toBuffer(data).toString('utf8'));
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.close(error.closeCode, error.message);
    }
  }

  private onControl(text: string): void {
    const message = parseClientMessage(text);
    if (message.kind === 'initialize') {
      if (this.childReady) throw new ProtocolError('Initialize was already received', CloseCode.policy);
      this.childReady = this.start(message.request);
      return;
    }
    const ready = this.requireInitialized();
    if (message.kind === 'winch') {
      void ready.then((child) => child?.resize(message.size)).catch((error: Error) => this.log(`resize: ${error.message}`));
      return;
    }
    this.stdinChain = this.stdinChain.then(async () => void (await ready)?.stdin.end());
  }

  /** Input that arrives while the command is still starting waits for it, in order. */
  private onStdin(chunk: Buffer): void {
    const ready = this.requireInitialized();
    this.received += 1;
    if (this.received - this.written > MAX_MESSAGES_OUTSTANDING) {
      throw new ProtocolError(`more than ${MAX_MESSAGES_OUTSTANDING} messages outstanding`, CloseCode.size);
    }
    this.stdinChain = this.stdinChain.then(async () => {
      const child = await ready;
      if (!child) return;
      await new Promise<void>((resolve) => {
        child.stdin.write(chunk, () => {
          this.written += 1;
          if (this.written % CAPACITY_EVERY === 0) this.sendCapacity();
          resolve();
        });
      });
    });
  }

  private requireInitialized(): Promise<ExecProcess | undefined> {
    if (!this.childReady) throw new ProtocolError('data sent before Initialize', CloseCode.policy);
    return this.childReady;
  }

  /** Resolves with the started command, or undefined when it could not start (the session is closed then). */
  private async start(request: InitializeRequest): Promise<ExecProcess | undefined> {
    let child: ExecProcess;
    try {
      child = await this.launcher.start(request);
    } catch (error) {
      const message = error instanceof ExecTargetError ? error.message : `exec failed: ${(error as Error).message}`;
      if (!(error instanceof ExecTargetError)) this.log(`exec in ${request.target}: ${(error as Error).stack ?? error}`);
      this.close(CloseCode.error, message);
      return undefined;
    }
    if (this.closed) {
      await child.kill();
      return undefined;
    }
    this.child = child;
    // A command that stops reading stdin must not fail the session with EPIPE.
    child.stdin.on('error', () => undefined);
    this.sendCapacity();
    void this.finish(child);
    return child;
  }

  private async finish(child: ExecProcess): Promise<void> {
    const outputDone = this.pumpOutput(child);
    const code = await child.exit;
    await outputDone;
    this.close(CloseCode.normal, String(code));
  }

  private pumpOutput(child: ExecProcess): Promise<void> {
    return new Promise((resolve) => {
      const output = child.output;
      output.on('data', (chunk: Buffer) => {
        if (this.closed) return;
        this.socket.send(chunk, { binary: true });
        if (this.socket.bufferedAmount > OUTPUT_HIGH_WATER) {
          output.pause();
          const waitDrain = (): void => {
            if (this.closed || this.socket.bufferedAmount <= OUTPUT_HIGH_WATER / 2) output.resume();
            else setTimeout(waitDrain, 5);
          };
          setTimeout(waitDrain, 5);
        }
      });
      output.once('end', resolve);
      output.once('close', resolve);
      output.once('error', () => resolve());
    });
  }

  private sendCapacity(): void {
    if (this.closed) return;
    this.socket.send(encodeCapacity({ max_messages_outstanding: MAX_MESSAGES_OUTSTANDING, messages_written: this.written }));
  }

  private close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pinger);
    this.socket.close(code, truncateUtf8(reason, REASON_BYTES));
  }

  private onClose(): void {
    const wasClosed = this.closed;
    this.closed = true;
    clearInterval(this.pinger);
    // The client went away first: the command has nobody to talk to.
    if (!wasClosed && this.child) void this.child.kill().catch(() => undefined);
  }

  private log(line: string): void {
    (this.options.log ?? ((text: string) => process.stderr.write(`${text}\n`)))(line);
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function truncateUtf8(text: string, bytes: number): string {
  const buffer = Buffer.from(text, 'utf8');
  if (buffer.length <= bytes) return text;
  // Cut at a character boundary: drop continuation bytes left at the end.
  let end = bytes;
  while (end > 0 && (buffer[end]! & 0xc0) === 0x80) end -= 1;
  return buffer.subarray(0, end).toString('utf8');
}
