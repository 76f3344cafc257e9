// What `/exec` needs from a container runtime: start a command in a named container with a terminal
// or pipes, feed it, resize it, learn its exit code.
import type { Readable, Writable } from 'node:stream';
import type { InitializeRequest, TtySize } from './messages.ts';

export interface ExecProcess {
  /** The process's stdin; end() is EOF. */
  readonly stdin: Writable;
  /** stdout and stderr merged (a terminal merges them anyway). */
  readonly output: Readable;
  /** Changes the terminal's size; a no-op without a terminal. */
  resize(size: TtySize): Promise<void>;
  /** The exit code once the process has ended (128 + n after signal n). */
  readonly exit: Promise<number>;
  /** Ends the process early (the client went away). */
  kill(): Promise<void>;
}

export interface ExecLauncher {
  /** Rejects with ExecTargetError when the target cannot run commands. */
  start(request: InitializeRequest): Promise<ExecProcess>;
}

/** The target is unknown or not running: the client's mistake, reported in the close frame. */
export class ExecTargetError extends Error {
  override readonly name = 'ExecTargetError';
}
