// Benchmark: upload a 2 GiB sparse raw image holding ~300 MiB of data as an EBS snapshot to the local fake
// endpoint (another process), with 1/4/16/64 workers, with and without a simulated round trip per request.
// Run: flock /tmp/brl-bench.lock node bench/ami.ts [--size-gib 2] [--data-mib 300] [--workers 1,4,16,64] [--latency-ms 0,20] [--runs 1]
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs, promisify } from 'node:util';
import { AwsClients } from '../src/lib/aws/clients.ts';
import { uploadSnapshot } from '../src/lib/aws/ebs-upload.ts';
import { describeDiskImage, openRawImage, type DiskImage } from '../src/lib/aws/images.ts';
import { fakeCredentials } from '../test/fakes/aws/sigv4.ts';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    'size-gib': { type: 'string', default: '2' },
    'data-mib': { type: 'string', default: '300' },
    workers: { type: 'string', default: '1,4,16,64' },
    'latency-ms': { type: 'string', default: '0,20' },
    runs: { type: 'string', default: '1' },
  },
});
const MiB = 1024 * 1024;
const blockSize = 512 * 1024;
const sizeBytes = Number(values['size-gib']) * 1024 * MiB;
const dataMiB = Number(values['data-mib']);
const workerCounts = values.workers.split(',').map(Number);
const latencies = values['latency-ms'].split(',').map(Number);
const runs = Number(values.runs);

// 60 extents spread over the disk like files on a filesystem, most starting mid-block.
const dir = await mkdtemp(join(tmpdir(), 'brl-bench-ami-'));
const rawPath = join(dir, 'disk.img');
const extentCount = 60;
const extentBytes = Math.floor((dataMiB * MiB) / extentCount / 4096) * 4096;
const expectedBlocks = new Set<number>();
const handle = await open(rawPath, 'w');
await handle.truncate(sizeBytes);
await handle.close();
// dd writes the data, so this process's memory high-water mark reflects the uploads alone.
for (let extent = 0; extent < extentCount; extent++) {
  const offset = Math.floor((extent * (sizeBytes - extentBytes - blockSize)) / extentCount / 4096) * 4096 + 4096 * (extent % 7);
  await run('dd', ['if=/dev/urandom', `of=${rawPath}`, 'bs=4096', `seek=${offset / 4096}`, `count=${extentBytes / 4096}`, 'conv=notrunc', 'status=none']);
  for (let index = Math.floor(offset / blockSize); index <= Math.floor((offset + extentBytes - 1) / blockSize); index++) expectedBlocks.add(index);
}
await run('lz4', ['-q', '-f', '-1', rawPath, `${rawPath}.lz4`]);
const raw = await describeDiskImage(rawPath);
const compressed = await describeDiskImage(`${rawPath}.lz4`);

interface Row {
  input: string;
  latencyMs: number;
  workers: number;
  seconds: number;
  /** User + system CPU of the uploading process: less sensitive than wall time to a busy machine. */
  cpuSeconds: number;
  putRequests: number;
  blocks: number;
}
const rows: Row[] = [];

async function startEndpoint(latencyMs: number) {
  const child = spawn(process.execPath, [join(import.meta.dirname, 'ami-endpoint.ts'), '--latency-ms', String(latencyMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [url] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  return { url, stop: () => child.stdin.end() };
}

async function measure(url: string, image: DiskImage, input: string, latencyMs: number, workers: number): Promise<void> {
  Object.assign(process.env, { AWS_ENDPOINT_URL: url, AWS_ACCESS_KEY_ID: fakeCredentials.accessKeyId, AWS_SECRET_ACCESS_KEY: fakeCredentials.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' });
  const secondsPerRun: number[] = [];
  const cpuPerRun: number[] = [];
  let last;
  for (let run = 0; run < runs; run++) {
    const clients = new AwsClients({ maxSockets: workers });
    try {
      const cpuBefore = process.cpuUsage();
      last = await uploadSnapshot({ clients, region: 'us-west-2', openImage: () => openRawImage(image), sizeBytes: image.sizeBytes, description: input, workers });
      const cpu = process.cpuUsage(cpuBefore);
      secondsPerRun.push(last.seconds);
      cpuPerRun.push((cpu.user + cpu.system) / 1e6);
    } finally {
      clients.destroy();
    }
  }
  if (!last) return;
  const stats = (await (await fetch(`${url}/__fake/stats`)).json()) as { snapshots: { id: string; blocks: number; state: string }[] };
  const stored = stats.snapshots.find((s) => s.id === last.snapshotId);
  if (stored?.blocks !== expectedBlocks.size || last.blocksUploaded !== expectedBlocks.size || stored.state === 'uploading') {
    throw new Error(`expected ${expectedBlocks.size} blocks, endpoint holds ${stored?.blocks} (${stored?.state})`);
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  const seconds = median(secondsPerRun);
  rows.push({ input, latencyMs, workers, seconds, cpuSeconds: median(cpuPerRun), putRequests: last.putRequests, blocks: last.blocksUploaded });
  console.error(`${input} latency ${latencyMs} ms, ${workers} workers: ${seconds.toFixed(2)} s`);
}

try {
  for (const latencyMs of latencies) {
    const endpoint = await startEndpoint(latencyMs);
    try {
      for (const workers of workerCounts) await measure(endpoint.url, raw, 'raw', latencyMs, workers);
      await measure(endpoint.url, compressed, 'lz4', latencyMs, Math.max(...workerCounts));
    } finally {
      endpoint.stop();
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

const uploadedMiB = (expectedBlocks.size * blockSize) / MiB;
console.log(`image ${sizeBytes / MiB / 1024} GiB, ${dataMiB} MiB of data in ${extentCount} extents = ${expectedBlocks.size} non-zero blocks of ${sizeBytes / blockSize} (${uploadedMiB.toFixed(0)} MiB sent)`);
console.log(`peak RSS of the uploading process: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB\n`);
console.log('| input | latency | workers | wall | data throughput | image scanned | CPU (uploader) | PutSnapshotBlock requests |');
console.log('|---|---|---|---|---|---|---|---|');
for (const row of rows) {
  console.log(
    `| ${row.input} | ${row.latencyMs} ms | ${row.workers} | ${row.seconds.toFixed(2)} s | ${(uploadedMiB / row.seconds).toFixed(0)} MiB/s | ${(sizeBytes / MiB / row.seconds).toFixed(0)} MiB/s | ${row.cpuSeconds.toFixed(2)} s | ${row.putRequests} |`,
  );
}
