// Worker-thread entry for lz4-parallel.ts: decodes independent LZ4 blocks handed over by the main thread.
import { parentPort } from 'node:worker_threads';
import { decodeJob, type BlockJob } from './lz4-parallel.ts';

parentPort?.on('message', (job: BlockJob) => {
  const result = decodeJob(job);
  parentPort!.postMessage(result, [result.input, result.output]);
});
