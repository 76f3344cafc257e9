// Benchmark: `updog update-image` applying a 1 GiB root image from a local server vs `curl | lz4 -d | dd`,
// with updog's peak RSS. Run: flock /tmp/brl-bench.lock node bench/updog.ts [--size-mib 1024] [--runs 3]
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readSync, writeSync, existsSync, statSync } from 'node:fs';
import { readFile, rm, mkdir } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readGpt, partitionOffsetBytes } from '../src/lib/image/gpt.ts';
import { buildRelease, makeHost, startRepository } from '../test/lib/updog/fixtures.ts';

const { values } = parseArgs({ options: { 'size-mib': { type: 'string', default: '1024' }, runs: { type: 'string', default: '3' } } });
const sizeMiB = Number(values['size-mib']);
const runs = Number(values.runs);
const repoDir = fileURLToPath(new URL('..', import.meta.url));
const work = join(repoDir, 'build', 'bench', 'updog');
await mkdir(work, { recursive: true });

/** A root image of real files (libraries, data) from /usr/lib, so it compresses like an OS root. */
function makeRootImage(path: string): void {
  if (existsSync(path) && statSync(path).size === sizeMiB * 1024 * 1024) return;
  const files = execFileSync('find', ['/usr/lib', '-type', 'f', '-size', '+0'], { encoding: 'utf8', maxBuffer: 1 << 28 }).split('\n').filter(Boolean).sort();
  const out = openSync(path, 'w');
  const total = sizeMiB * 1024 * 1024;
  const buffer = Buffer.alloc(1024 * 1024);
  let written = 0;
  for (let index = 0; written < total; index = (index + 1) % files.length) {
    let fd: number;
    try {
      fd = openSync(files[index]!, 'r');
    } catch {
      continue;
    }
    for (let bytes = readSync(fd, buffer); bytes > 0 && written < total; bytes = readSync(fd, buffer)) {
      const take = Math.min(bytes, total - written);
      writeSync(out, buffer, 0, take);
      written += take;
    }
    closeSync(fd);
  }
  closeSync(out);
}

function median(samples: number[]): number {
  return [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;
}

/** Runs a command, returning wall time, stderr and (for updog) the peak RSS polled from /proc. */
function measure(command: string, args: string[], pollRss: boolean): Promise<{ ms: number; peakRssKiB: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let peakRssKiB = 0;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const poll = pollRss ? setInterval(() => {
      readFile(`/proc/${child.pid}/status`, 'utf8').then((status) => {
        const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
        if (hwm) peakRssKiB = Math.max(peakRssKiB, Number(hwm[1]));
      }, () => undefined);
    }, 20) : undefined;
    child.on('exit', (code) => {
      clearInterval(poll);
      const ms = performance.now() - started;
      if (code !== 0) reject(new Error(`${command} exited ${code}: ${stderr}`));
      else resolve({ ms, peakRssKiB, stderr });
    });
  });
}

const rootImage = join(work, `root-${sizeMiB}.img`);
makeRootImage(rootImage);
const releaseDir = join(work, 'release');
await rm(releaseDir, { recursive: true, force: true });
await mkdir(releaseDir);
const hashMiB = Math.ceil(sizeMiB / 100) + 1;
const release = await buildRelease('2.0.0', { rootImage, hashMiB, dir: releaseDir });
const repo = await startRepository([release], {}, { '(1.0.0, 2.0.0)': [] });
const host = await makeHost(repo, '1.0.0', {}, { sizes: { bootMiB: 2, rootMiB: sizeMiB + 16, hashMiB }, markActiveSet: false });
const { table } = await readGpt(host.disk);
const rootB = table.partitions.find((partition) => partition.name === 'BOTTLEROCKET-ROOT-B')!;
const compressedMiB = release.targets[release.names.root]!.length / 1048576;

const updog = { total: [] as number[], rootWrite: [] as number[], verify: [] as number[], rss: [] as number[], steps: '' };
const baseline: number[] = [];
for (let run = 0; run < runs; run++) {
  const result = await measure(join(repoDir, 'bin', 'updog'), ['update-image', '--now', '--log-level', 'debug', '--root', host.root, '--disk', host.disk], true);
  updog.total.push(result.ms);
  updog.rootWrite.push(Number(/writing \S+-root\.ext4\.lz4 to ROOT-B took (\d+) ms/.exec(result.stderr)![1]));
  updog.verify.push(Number(/verifying the written set against grub\.cfg took (\d+) ms/.exec(result.stderr)![1]));
  updog.rss.push(result.peakRssKiB / 1024);
  updog.steps = result.stderr.split('\n').filter((line) => line.includes(' took ')).join('\n');
  const url = repo.server.url(repo.targetPath(release.names.root));
  const pipelineCommand = `curl -sf '${url}' | lz4 -d -c | dd of='${host.disk}' bs=4M oflag=seek_bytes seek=${partitionOffsetBytes(rootB)} conv=notrunc,fdatasync status=none`;
  baseline.push((await measure('/bin/sh', ['-c', pipelineCommand], false)).ms);
}
await repo.server.close();

const mibps = (ms: number): number => sizeMiB / (ms / 1000);
const rows = [
  ['`curl | lz4 -d | dd` (root only)', median(baseline)],
  ['updog: streaming the root (TUF-verified, decoded, written, fsynced)', median(updog.rootWrite)],
  ['updog: verity check of the written set', median(updog.verify)],
  ['updog update-image, end to end (metadata, size pre-check, root + boot + hash, verify, flags)', median(updog.total)],
] as const;
console.log(`root image ${sizeMiB} MiB (${compressedMiB.toFixed(0)} MiB as LZ4 -9), median of ${runs}, load ${loadavg()[0]!.toFixed(1)}`);
console.log('| step | time | throughput (root MiB/s) |\n|---|---|---|');
for (const [name, ms] of rows) console.log(`| ${name} | ${(ms / 1000).toFixed(2)} s | ${mibps(ms).toFixed(0)} |`);
console.log(`\nstreaming write vs curl|lz4|dd: ${(median(baseline) / median(updog.rootWrite)).toFixed(2)}×; end to end: ${(median(baseline) / median(updog.total)).toFixed(2)}×`);
console.log(`updog peak RSS: ${Math.max(...updog.rss).toFixed(0)} MiB (max over runs)`);
console.log(`\nlast run, updog --log-level debug:\n${updog.steps}`);
await rm(host.dir, { recursive: true, force: true });
await rm(releaseDir, { recursive: true, force: true });
