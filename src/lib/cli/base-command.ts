// The base of every brl command: `--json`, and BrlErrors printed as a message plus a hint, not a stack.
import { Command, Errors } from '@oclif/core';
import { type BrlError, ExitCode, errnoCode, fileError, isBrlError } from '../core/errors.ts';

/** The `--json` error envelope: `{"error": {code, message, hint?, exitCode}}`. */
export interface ErrorJson {
  error: { name: string; code: string; message: string; hint?: string; exitCode: number; stack?: string };
}

export abstract class BrlCommand<Result> extends Command {
  static override enableJsonFlag = true;

  abstract override run(): Promise<Result>;

  protected override async catch(error: Error & { exitCode?: number }): Promise<unknown> {
    // oclif reports an argument that fails its own validation (`Args.integer({min})`) as a plain Error
    // with exit 1; anything thrown before parsing finished is a usage mistake.
    if (!this.parsed && !isBrlError(error) && !(error instanceof Errors.CLIError)) {
      return super.catch(new Errors.CLIError(`${error.message}\nSee more help with --help`, { exit: ExitCode.usage }));
    }
    const environmentError = environmentFileError(error);
    if (environmentError) return this.catch(environmentError);
    if (!isBrlError(error)) return super.catch(error);
    process.exitCode = error.exitCode;
    if (this.jsonEnabled()) {
      this.logJson(this.toErrorJson(error));
      return undefined;
    }
    throw new Errors.CLIError(error.message, {
      exit: error.exitCode,
      ...(error.hint === undefined ? {} : { suggestions: [error.hint] }),
    });
  }

  /**
   * One envelope for every failure under `--json`. oclif's default spreads the whole error, which for
   * a flag or argument mistake dumps the parser's input and config and carries no `code`.
   */
  protected override toErrorJson(error: unknown): ErrorJson {
    if (isBrlError(error)) return { error: error.toJSON() };
    if (error instanceof Errors.CLIError) {
      const exitCode = typeof error.oclif.exit === 'number' ? error.oclif.exit : ExitCode.failure;
      const usage = exitCode === ExitCode.usage;
      return {
        error: {
          name: error.name,
          code: usage ? 'USAGE' : 'CLI_ERROR',
          message: error.message,
          ...(usage ? { hint: 'see --help' } : {}),
          exitCode,
        },
      };
    }
    // Anything else is a bug: keep its stack so it can be reported.
    const bug = error instanceof Error ? error : new Error(String(error));
    return {
      error: { name: bug.name, code: 'INTERNAL_ERROR', message: bug.message, exitCode: ExitCode.failure, ...(bug.stack === undefined ? {} : { stack: bug.stack }) },
    };
  }

  /** Human output only; `--json` prints the returned result instead. */
  protected say(line = ''): void {
    if (!this.jsonEnabled()) this.log(line);
  }
}

/**
 * No permission, a read-only or a full file system can hit any write or read in any module, and are
 * never brl's bug: they become a BrlError naming the path wherever they were thrown.
 */
function environmentFileError(error: unknown): BrlError | undefined {
  const code = errnoCode(error);
  if (code === undefined || !['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT'].includes(code)) return undefined;
  const path = (error as { path?: unknown }).path;
  return typeof path === 'string' ? fileError(error, path) : undefined;
}
