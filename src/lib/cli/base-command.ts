// The base of every brl command: `--json`, and BrlErrors printed as a message plus a hint, not a stack.
import { Command, Errors } from '@oclif/core';
import { isBrlError } from '../core/errors.ts';

export abstract class BrlCommand<Result> extends Command {
  static override enableJsonFlag = true;

  abstract override run(): Promise<Result>;

  protected override async catch(error: Error & { exitCode?: number }): Promise<unknown> {
    if (!isBrlError(error)) return super.catch(error);
    process.exitCode = error.exitCode;
    if (this.jsonEnabled()) {
      this.logJson({ error: error.toJSON() });
      return undefined;
    }
    throw new Errors.CLIError(error.message, {
      exit: error.exitCode,
      ...(error.hint === undefined ? {} : { suggestions: [error.hint] }),
    });
  }

  /** Human output only; `--json` prints the returned result instead. */
  protected say(line = ''): void {
    if (!this.jsonEnabled()) this.log(line);
  }
}
