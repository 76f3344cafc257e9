// Every use of the machine's apt (deb: and deb-src: sources, debs.lock) needs a Debian or Ubuntu host.
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';

/** The error for a spawn that failed because `tool` is absent; undefined for any other failure. */
export function missingAptTool(error: unknown, tool: string, task: string): BrlError | undefined {
  if (errnoCode(error) !== 'ENOENT') return undefined;
  return new BrlError(`cannot ${task}: ${tool} is not installed`, {
    hint: `${task} goes through the machine's apt sources and indices, which needs a Debian or Ubuntu host`,
    exitCode: ExitCode.missingTool,
    code: 'MISSING_HOST_TOOL',
  });
}
