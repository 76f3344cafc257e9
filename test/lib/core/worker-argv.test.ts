import test from 'ava';
import { Worker } from 'node:worker_threads';
import { workerExecArgv } from '../../../src/lib/core/worker-argv.ts';

test('per-process flags are dropped, so a worker starts under updog\'s launcher flags', async (t) => {
  const launcher = ['--max-semi-space-size=1', '--enable-source-maps', '--input-type=module', '--max-old-space-size', '--no-warnings'];
  const argv = workerExecArgv(launcher);
  t.deepEqual(argv, ['--enable-source-maps', '--no-warnings']);
  t.throws(() => new Worker('0', { eval: true, execArgv: ['--max-semi-space-size=1'] }), { code: 'ERR_WORKER_INVALID_EXEC_ARGV' });
  const worker = new Worker('0', { eval: true, execArgv: argv });
  t.is(await new Promise((resolve) => worker.on('exit', resolve)), 0);
});
