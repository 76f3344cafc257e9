// Progress for long work: listr2's live renderer on a TTY, plain lines otherwise, nothing under --json.
import { Listr, ListrLogger, ProcessOutput, type ListrTask } from 'listr2';

export type ProgressMode = 'auto' | 'plain' | 'silent';

export function progressRenderer(mode: ProgressMode): 'default' | 'simple' | 'silent' {
  if (mode === 'silent') return 'silent';
  if (mode === 'plain') return 'simple';
  return process.stderr.isTTY && !process.env.CI ? 'default' : 'simple';
}

function stderrLogger(): ListrLogger {
  return new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) });
}

/** Runs tasks with the renderer the mode asks for; `concurrency` > 1 runs them in parallel. */
export async function runTasks<Context extends object>(
  tasks: ListrTask<Context>[],
  options: { mode?: ProgressMode; concurrency?: number; exitOnError?: boolean; context?: Context } = {},
): Promise<Context> {
  const renderer = progressRenderer(options.mode ?? 'auto');
  const list = new Listr<Context, typeof renderer, 'simple'>(tasks, {
    concurrent: options.concurrency !== undefined && options.concurrency > 1 ? options.concurrency : false,
    exitOnError: options.exitOnError ?? true,
    renderer,
    fallbackRenderer: 'simple',
    // Progress is not a result: keep stdout for the command's output (and --json).
    rendererOptions: { logger: stderrLogger() },
    fallbackRendererOptions: { logger: stderrLogger() },
    ...(options.context === undefined ? {} : { ctx: options.context }),
  });
  return list.run();
}
