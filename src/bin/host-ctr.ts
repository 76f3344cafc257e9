// host-ctr: runs one host container on host-containerd and keeps it running (host-containers@.service).
import { hostCtrMain } from '../lib/host/host-ctr/main.ts';

const controller = new AbortController();
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => controller.abort());
process.exitCode = await hostCtrMain(process.argv.slice(2), { stderr: (text) => process.stderr.write(text), signal: controller.signal });
