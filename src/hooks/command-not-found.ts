// An unknown command is a usage error with the nearest command as a hint; under --json, one error envelope.
import { Errors, type Hook } from '@oclif/core';
import { ExitCode } from '../lib/core/errors.ts';

const hook: Hook<'command_not_found'> = async function ({ id, argv }) {
  const typed = id.replaceAll(':', ' ');
  const nearest = nearestCommand(id, this.config.commandIDs);
  const message = `"${typed}" is not a brl command`;
  const hint = nearest === undefined ? 'run brl help to list the commands' : `did you mean brl ${nearest.replaceAll(':', ' ')}? (brl help lists the commands)`;
  if (argv?.includes('--json')) {
    process.stdout.write(`${JSON.stringify({ error: { name: 'BrlError', code: 'UNKNOWN_COMMAND', message, hint, exitCode: ExitCode.usage } }, null, 2)}\n`);
    process.exitCode = ExitCode.usage;
    return;
  }
  throw new Errors.CLIError(message, { exit: ExitCode.usage, suggestions: [hint] });
};

export default hook;

/** The command id closest to `id` by edit distance, when it is close enough to be a likely typo. */
function nearestCommand(id: string, ids: readonly string[]): string | undefined {
  let best: { id: string; distance: number } | undefined;
  for (const candidate of ids) {
    const distance = editDistance(id, candidate);
    if (best === undefined || distance < best.distance) best = { id: candidate, distance };
  }
  return best !== undefined && best.distance <= Math.max(2, Math.floor(id.length / 3)) ? best.id : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
