// Benchmark: fetch 50 files from a local HTTP server into an empty lookaside cache, in parallel vs one at a time.
// Run: flock /tmp/brl-bench.lock node bench/fetch.ts [--files 50] [--size-kib 1024] [--runs 3]
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fetchExternalFiles, type FetchConfig } from '../src/lib/fetch/index.ts';
import type { PackageDefinition } from '../src/lib/packages/manifest.ts';
import { FaultServer } from '../test/helpers/fault-server.ts';

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '50' },
    'size-kib': { type: 'string', default: '1024' },
    runs: { type: 'string', default: '3' },
  },
});
const fileCount = Number(values.files);
const sizeKiB = Number(values['size-kib']);
const runs = Number(values.runs);

// 0 ms: loopback, bound by CPU and disk; 50 ms: a mirror one round trip away.
const latencies = [0, 50];
const jobCounts = [1, 8, 16];

const server = await FaultServer.start();
const results: { latencyMs: number; jobs: number; medianMs: number; mibPerSecond: number }[] = [];
try {
  for (const latencyMs of latencies) {
    const packages: PackageDefinition[] = [];
    for (let index = 0; index < fileCount; index++) {
      const body = randomBytes(sizeKiB * 1024);
      const fileName = `source-${latencyMs}-${index}.tar.gz`;
      const url = server.serve(`/${fileName}`, body, { latencyMs });
      const sha512 = createHash('sha512').update(body).digest('hex');
      packages.push({
        name: `pkg-${index}`,
        dir: '/nonexistent',
        specPath: '/nonexistent/x.spec',
        manifestPath: '/nonexistent/package.toml',
        externalFiles: [{ url, kind: 'url', sha512, fileName, forceUpstream: false }],
        buildDependencies: [],
        hardeningExceptions: [],
      });
    }
    for (const jobs of jobCounts) {
      const timesMs: number[] = [];
      for (let run = 0; run < runs; run++) {
        const cacheDir = await mkdtemp(join(tmpdir(), 'brl-bench-fetch-'));
        const config: FetchConfig = { cacheDir, lookasideCaches: [], upstreamFallback: true, jobs };
        const started = performance.now();
        const fetched = await fetchExternalFiles(packages, config, { progress: 'silent' });
        timesMs.push(performance.now() - started);
        if (fetched.some((file) => file.source !== 'upstream')) throw new Error('expected every file to be downloaded');
        await rm(cacheDir, { recursive: true, force: true });
      }
      const medianMs = timesMs.sort((a, b) => a - b)[Math.floor(timesMs.length / 2)]!;
      const mibPerSecond = (fileCount * sizeKiB) / 1024 / (medianMs / 1000);
      results.push({ latencyMs, jobs, medianMs, mibPerSecond });
      console.log(`latency ${latencyMs} ms, jobs ${jobs}: ${medianMs.toFixed(0)} ms (${mibPerSecond.toFixed(0)} MiB/s), runs: ${timesMs.map((ms) => ms.toFixed(0)).join(', ')}`);
    }
  }
} finally {
  await server.close();
}

console.log(`\n${fileCount} files × ${sizeKiB} KiB, median of ${runs} runs into an empty cache\n`);
console.log('| server latency | jobs | wall | throughput | speed-up vs jobs 1 |');
console.log('|---|---|---|---|---|');
for (const result of results) {
  const serial = results.find((entry) => entry.latencyMs === result.latencyMs && entry.jobs === 1)!;
  console.log(
    `| ${result.latencyMs} ms | ${result.jobs} | ${(result.medianMs / 1000).toFixed(2)} s | ${result.mibPerSecond.toFixed(0)} MiB/s | ${(serial.medianMs / result.medianMs).toFixed(1)}× |`,
  );
}
