// host-ctr: runs one host container on host-containerd and keeps it running (host-containers@.service).
import { once } from 'node:events';
import { hostCtrMain } from '../lib/host/host-ctr/main.ts';

const controller = new AbortController();
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => controller.abort());
process.exitCode = await hostCtrMain(process.argv.slice(2), {
  // The journal's stream socket: a write that does not fit waits in memory until 'drain'.
  stderr: (text) => process.stderr.write(text),
  drained: async () => {
    if (process.stderr.writableNeedDrain) await once(process.stderr, 'drain');
  },
  signal: controller.signal,
});
