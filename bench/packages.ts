// Benchmark: cold build of every sample package vs a no-op rebuild, through the CLI, in the same run.
// Run (after `npx tsc -p .`): flock /tmp/brl-bench.lock node bench/packages.ts [--noop-runs 5] [--jobs 2]
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { fetchExternalFiles, loadFetchConfig } from '../src/lib/fetch/index.ts';
import { buildPackages } from '../src/lib/packages/build.ts';
import { loadAllPackages } from '../src/lib/packages/manifest.ts';

const execFileAsync = promisify(execFile);
const { values } = parseArgs({ options: { 'noop-runs': { type: 'string', default: '5' }, jobs: { type: 'string', default: '2' } } });
const noopRuns = Number(values['noop-runs']);
const projectDir = fileURLToPath(new URL('..', import.meta.url));
const brl = join(projectDir, 'bin', 'brl');

interface BuildOutput {
  packages: Array<{ name: string; status: string; durationMs: number; rpms: string[] }>;
}

async function timedBuild(buildDir: string): Promise<{ wallMs: number; output: BuildOutput }> {
  const started = performance.now();
  const { stdout } = await execFileAsync(brl, ['build', 'package', '--all', '--jobs', values.jobs, '--json'], {
    cwd: projectDir,
    env: { ...process.env, BRL_BUILD_DIR: buildDir },
    maxBuffer: 64 * 1024 * 1024,
  });
  return { wallMs: performance.now() - started, output: JSON.parse(stdout) as BuildOutput };
}

// Sources are fetched first and not timed: this measures building, not the network.
const fetchStarted = performance.now();
await fetchExternalFiles(await loadAllPackages(projectDir), await loadFetchConfig(projectDir), { progress: 'silent' });
const fetchMs = performance.now() - fetchStarted;

const buildDir = await mkdtemp(join(tmpdir(), 'brl-bench-packages-'));
try {
  const cold = await timedBuild(buildDir);
  const failed = cold.output.packages.filter((pkg) => pkg.status !== 'built');
  if (failed.length > 0) throw new Error(`cold build did not build: ${failed.map((pkg) => `${pkg.name} (${pkg.status})`).join(', ')}`);
  const noopMs: number[] = [];
  for (let run = 0; run < noopRuns; run++) {
    const noop = await timedBuild(buildDir);
    const rebuilt = noop.output.packages.filter((pkg) => pkg.status !== 'cached');
    if (rebuilt.length > 0) throw new Error(`no-op run rebuilt: ${rebuilt.map((pkg) => pkg.name).join(', ')}`);
    noopMs.push(noop.wallMs);
  }
  noopMs.sort((a, b) => a - b);
  // The same no-op as a library call: what the build system itself costs, without CLI start-up.
  process.env.BRL_BUILD_DIR = buildDir;
  const libraryMs: number[] = [];
  for (let run = 0; run < noopRuns; run++) {
    const started = performance.now();
    const result = await buildPackages(projectDir, { all: true, jobs: Number(values.jobs), progress: 'silent' });
    libraryMs.push(performance.now() - started);
    if (result.packages.some((pkg) => pkg.status !== 'cached')) throw new Error('library no-op rebuilt a package');
  }
  libraryMs.sort((a, b) => a - b);
  const noopMedian = noopMs[Math.floor(noopMs.length / 2)] as number;
  const ratio = noopMedian / cold.wallMs;

  console.log(`fetch check (sources already cached): ${(fetchMs / 1000).toFixed(2)} s`);
  console.log(`load average at the end: ${loadavg().map((value) => value.toFixed(1)).join(' ')}`);
  console.log('\n| package | cold build |');
  console.log('|---|---|');
  for (const pkg of cold.output.packages) console.log(`| ${pkg.name} | ${(pkg.durationMs / 1000).toFixed(1)} s |`);
  console.log('\n| run | wall (CLI, --jobs ' + values.jobs + ') |');
  console.log('|---|---|');
  console.log(`| cold, ${cold.output.packages.length} packages | ${(cold.wallMs / 1000).toFixed(2)} s |`);
  console.log(`| no-op (median of ${noopRuns}: ${noopMs.map((ms) => (ms / 1000).toFixed(2)).join(', ')} s) | ${(noopMedian / 1000).toFixed(2)} s |`);
  console.log(`| no-op, library call (median of ${noopRuns}) | ${((libraryMs[Math.floor(libraryMs.length / 2)] as number) / 1000).toFixed(3)} s |`);
  console.log(`\nno-op / cold = 1/${Math.round(1 / ratio)}`);
  const meets = noopMedian < 2000 && ratio < 1 / 20;
  console.log(`targets (no-op < 2 s and < 1/20 of cold): ${meets ? 'met' : 'NOT met'}`);
  process.exitCode = meets ? 0 : 1;
} finally {
  await rm(buildDir, { recursive: true, force: true });
}
