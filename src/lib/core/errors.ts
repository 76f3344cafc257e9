// The one error type for mistakes a user can cause or fix; anything else is a bug and keeps its stack.

/** Exit codes, pinned in one place so scripts can rely on them. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  badInput: 3,
  notFound: 4,
  missingTool: 5,
  verifyFailed: 6,
  network: 7,
  buildFailed: 8,
  conflict: 9,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface BrlErrorOptions {
  /** What the user should do next. */
  hint?: string;
  exitCode?: ExitCode;
  /** Stable machine-readable identifier, e.g. `SHA512_MISMATCH`. */
  code?: string;
  cause?: unknown;
}

export class BrlError extends Error {
  override readonly name = 'BrlError';
  readonly hint: string | undefined;
  readonly exitCode: ExitCode;
  readonly code: string;

  constructor(message: string, options: BrlErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? ExitCode.failure;
    this.code = options.code ?? 'BRL_ERROR';
  }

  toJSON(): { name: string; code: string; message: string; hint?: string; exitCode: number } {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      exitCode: this.exitCode,
    };
  }
}

export function isBrlError(error: unknown): error is BrlError {
  return error instanceof BrlError;
}

/** Node's errno errors (ENOENT, EACCES, …) carry a `code`. */
export function errnoCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;
}

/**
 * A BrlError for a file system failure on a path the user chose (missing, a directory, no permission,
 * read-only, full), or undefined for anything else, which stays a bug. Use at the place a user's path
 * is opened: `throw fileError(error, path) ?? error`.
 */
export function fileError(error: unknown, path: string, options: { what?: string; hint?: string } = {}): BrlError | undefined {
  const named = options.what === undefined ? path : `${options.what} ${path}`;
  const make = (message: string, exitCode: ExitCode, code: string, hint?: string): BrlError =>
    new BrlError(message, { exitCode, code, cause: error, ...((options.hint ?? hint) === undefined ? {} : { hint: options.hint ?? hint }) });
  switch (errnoCode(error)) {
    case 'ENOENT':
      return make(`${named} does not exist`, ExitCode.notFound, 'FILE_NOT_FOUND');
    case 'ENOTDIR':
      return make(`${named} does not exist (part of the path is not a directory)`, ExitCode.notFound, 'FILE_NOT_FOUND');
    case 'EISDIR':
      return make(`${named} is a directory, not a file`, ExitCode.badInput, 'IS_A_DIRECTORY');
    case 'EACCES':
    case 'EPERM':
      return make(`permission denied: ${named}`, ExitCode.failure, 'PERMISSION_DENIED', 'check the owner and mode of the path and its parent directories, or run as a user who may access it');
    case 'EROFS':
      return make(`${named} is on a read-only file system`, ExitCode.failure, 'READ_ONLY_FILE_SYSTEM');
    case 'ENOSPC':
    case 'EDQUOT':
      return make(`no space left on the file system holding ${named}`, ExitCode.failure, 'NO_SPACE', 'free some space or choose another directory');
    default:
      return undefined;
  }
}
