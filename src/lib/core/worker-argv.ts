// Node flags a worker thread may inherit from its process. A Worker refuses the whole list when one
// is per-process: --input-type (from `node -e`), and the V8 heap sizes (updog's launcher sets
// --max-semi-space-size; a worker's heap is set with resourceLimits instead).
const perProcess = ['--input-type', '--max-semi-space-size', '--max-old-space-size'];

export function workerExecArgv(execArgv: readonly string[] = process.execArgv): string[] {
  return execArgv.filter((arg) => !perProcess.some((flag) => arg === flag || arg.startsWith(`${flag}=`)));
}
