// Worker-thread entry for lz4-parallel.ts: decodes independent LZ4 blocks in the arena shared with the main thread.
import { parentPort } from 'node:worker_threads';
import { ArenaDecoder } from '../image/lz4-wasm.ts';
import { decodeJob, type WorkerMessage } from './lz4-parallel.ts';

let decoder: ArenaDecoder | undefined;
let bytes: Uint8Array | undefined;
parentPort?.on('message', (message: WorkerMessage) => {
  if ('arena' in message) {
    decoder = new ArenaDecoder(message.arena);
    bytes = new Uint8Array(message.arena.buffer);
    return;
  }
  parentPort!.postMessage(decodeJob(message, decoder!, bytes!));
});
