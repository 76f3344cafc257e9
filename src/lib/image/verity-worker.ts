// Worker-thread entry: takes level-0 chunks from verity.ts's shared queue until none are left.
import { workerData } from 'node:worker_threads';
import { runLevel0Task, type Level0Task } from './verity.ts';

runLevel0Task(workerData as Level0Task);
