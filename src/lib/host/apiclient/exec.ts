// `apiclient exec TARGET CMD…`: runs a command in a host container over the `/exec` WebSocket and
// returns its exit code. Loaded only for exec, so other subcommands do not pay for `ws`.
import type { RawData, WebSocket } from 'ws';
import { CloseCode, encodeClientMessage, parseServerMessage, type ClientMessage, type TtySize } from '../exec/messages.ts';

export interface ExecStreams {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number };
  /** Calls `listener` when the terminal changes size (SIGWINCH); returns how to stop. */
  onResize: (listener: () => void) => () => void;
}

export interface ExecOptions {
  socketPath: string;
  target: string;
  command: string[];
  /** True/false from -t/-T; undefined = a terminal when stdin and stdout are terminals. */
  tty: boolean | undefined;
}

/** The server closed the session without an exit code: the reason names what went wrong. */
export class ExecFailedError extends Error {
  override readonly name = 'ExecFailedError';
}

export function processStreams(): ExecStreams {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    onResize: (listener) => {
      process.on('SIGWINCH', listener);
      return () => void process.off('SIGWINCH', listener);
    },
  };
}

export async function runExec(options: ExecOptions, streams: ExecStreams): Promise<number> {
  const { default: WebSocketClient } = await import('ws');
  const tty = options.tty ?? Boolean(streams.stdin.isTTY && streams.stdout.isTTY);
  const socket: WebSocket = new WebSocketClient(`ws+unix://${options.socketPath}:/exec`);
  const send = (message: ClientMessage): void => socket.send(encodeClientMessage(message));
  const size = (): TtySize => ({ rows: streams.stdout.rows ?? 24, cols: streams.stdout.columns ?? 80 });

  return await new Promise<number>((resolve, reject) => {
    const cleanups: (() => void)[] = [];
    let sent = 0;
    let window = 0;
    let written = 0;
    let stdinPaused = false;

    const pumpStdin = (): void => {
      const onData = (chunk: Buffer | string): void => {
        socket.send(typeof chunk === 'string' ? Buffer.from(chunk) : chunk, { binary: true });
        sent += 1;
        // The server takes at most `window` unwritten messages; wait for its next Capacity.
        if (sent - written >= window) {
          streams.stdin.pause();
          stdinPaused = true;
        }
      };
      const onEnd = (): void => {
        if (socket.readyState === socket.OPEN) send({ kind: 'content-complete' });
      };
      streams.stdin.on('data', onData);
      streams.stdin.once('end', onEnd);
      cleanups.push(() => {
        streams.stdin.off('data', onData);
        streams.stdin.off('end', onEnd);
        streams.stdin.pause();
      });
    };

    socket.once('open', () => {
      send({ kind: 'initialize', request: { command: options.command, target: options.target, tty: tty ? { size: size() } : null } });
      if (tty) {
        streams.stdin.setRawMode?.(true);
        cleanups.push(() => void streams.stdin.setRawMode?.(false));
        cleanups.push(streams.onResize(() => send({ kind: 'winch', size: size() })));
      }
    });
    socket.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (isBinary) {
        streams.stdout.write(bytes);
        return;
      }
      const capacity = parseServerMessage(bytes.toString('utf8'));
      const first = window === 0;
      window = capacity.max_messages_outstanding;
      written = capacity.messages_written;
      // Input starts once the server has said how much it takes.
      if (first) pumpStdin();
      else if (stdinPaused && sent - written < window) {
        stdinPaused = false;
        streams.stdin.resume();
      }
    });
    socket.once('close', (code: number, reasonBytes: Buffer) => {
      for (const cleanup of cleanups.reverse()) cleanup();
      const reason = reasonBytes.toString('utf8');
      if (code === CloseCode.normal && /^\d+$/.test(reason)) resolve(Number(reason));
      else reject(new ExecFailedError(reason === '' ? `exec session closed with code ${code}` : reason));
    });
    socket.once('error', (error: Error) => {
      // 'close' follows with code 1006; keep the more telling socket error.
      socket.removeAllListeners('close');
      for (const cleanup of cleanups.reverse()) cleanup();
      reject(new ExecFailedError(`Failed to connect to the API at ${options.socketPath}: ${error.message}`));
    });
  });
}
