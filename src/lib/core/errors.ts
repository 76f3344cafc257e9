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
