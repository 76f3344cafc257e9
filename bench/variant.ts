// Benchmark: `brl build variant dev` with packages cached — wall time, stage times and peak RSS — at
// two OS image sizes, to show memory does not grow with the image (everything is streamed or sparse).
// Run: flock /tmp/brl-bench.lock node bench/variant.ts [--runs 2] [--big-gib 8]
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const { values } = parseArgs({ options: { runs: { type: 'string', default: '2' }, 'big-gib': { type: 'string', default: '8' } } });
const runs = Number(values.runs);
const bigGiB = Number(values['big-gib']);
const repoDir = fileURLToPath(new URL('..', import.meta.url));
const node = process.execPath;

interface RunOutput {
  durationMs: number;
  stageDurationsMs: Record<string, number>;
  rootHash: string;
  artifacts: Array<[string, string]>;
  nodeMaxRssKiB: number;
}

/** One build in a fresh process under GNU time: %M is the peak RSS of the process or any tool it ran. */
async function timedBuild(projectDir: string, variant: string): Promise<RunOutput & { wallMs: number; treeMaxRssKiB: number }> {
  const started = performance.now();
  const { stdout, stderr } = await execFileAsync('/usr/bin/time', ['-f', 'brl-bench-maxrss %M', node, join(repoDir, 'bench', 'variant-run.ts'), projectDir, variant], {
    env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000', BRL_BUILD_ID: 'bench000' },
    maxBuffer: 64 * 1024 * 1024,
  });
  const wallMs = performance.now() - started;
  const treeMaxRssKiB = Number(/brl-bench-maxrss (\d+)/.exec(stderr)?.[1]);
  return { ...(JSON.parse(stdout) as RunOutput), wallMs, treeMaxRssKiB };
}

// A scratch project sharing the repository's packages and their cached RPMs, with the dev variant at two sizes.
const projectDir = await mkdtemp(join(tmpdir(), 'brl-bench-variant-'));
try {
  await cp(join(repoDir, 'packages-specs'), join(projectDir, 'packages-specs'), { recursive: true });
  await cp(join(repoDir, 'Release.toml'), join(projectDir, 'Release.toml'));
  await symlink(join(repoDir, '.lookaside'), join(projectDir, '.lookaside'));
  await mkdir(join(projectDir, 'build'), { recursive: true });
  await cp(join(repoDir, 'build', 'rpms'), join(projectDir, 'build', 'rpms'), { recursive: true });
  const devToml = await readFile(join(repoDir, 'variants', 'dev', 'variant.toml'), 'utf8');
  await mkdir(join(projectDir, 'variants', 'dev'), { recursive: true });
  await writeFile(join(projectDir, 'variants', 'dev', 'variant.toml'), devToml);
  await mkdir(join(projectDir, 'variants', 'dev-big'), { recursive: true });
  await writeFile(join(projectDir, 'variants', 'dev-big', 'variant.toml'),
    `${devToml}\n[image-layout]\nos-image-size-gib = ${bigGiB}\ndata-image-size-gib = ${bigGiB / 2}\n`);

  // Warm-up (not timed): builds any package missing from the cache and fills the page cache.
  await timedBuild(projectDir, 'dev');
  const rows: string[] = [];
  const results: Record<'dev' | 'dev-big', Array<Awaited<ReturnType<typeof timedBuild>>>> = { dev: [], 'dev-big': [] };
  for (let run = 0; run < runs; run++) {
    for (const variant of ['dev', 'dev-big'] as const) results[variant].push(await timedBuild(projectDir, variant));
  }
  for (const variant of ['dev', 'dev-big'] as const) {
    const list = results[variant].sort((a, b) => a.wallMs - b.wallMs);
    const median = list[Math.floor(list.length / 2)] as (typeof list)[number];
    const size = variant === 'dev' ? '2 GiB OS + 1 GiB data' : `${bigGiB} GiB OS + ${bigGiB / 2} GiB data`;
    rows.push(`| ${size} | ${(median.wallMs / 1000).toFixed(1)} s | ${Math.max(...list.map((r) => r.nodeMaxRssKiB / 1024)).toFixed(0)} MiB | ${Math.max(...list.map((r) => r.treeMaxRssKiB / 1024)).toFixed(0)} MiB | ${Object.entries(median.stageDurationsMs).map(([stage, ms]) => `${stage} ${(ms / 1000).toFixed(1)}`).join('; ')} |`);
    const hashes = new Set(list.map((r) => JSON.stringify(r.artifacts)));
    if (hashes.size !== 1) throw new Error(`${variant}: runs produced different artifacts`);
  }
  console.log(`load average at the end: ${loadavg().map((value) => value.toFixed(1)).join(' ')}; ${runs} timed runs per size (median wall, max RSS)`);
  console.log('\n| image size | wall | peak RSS, brl (node) | peak RSS, any process | stages (s) |');
  console.log('|---|---|---|---|---|');
  for (const row of rows) console.log(row);
} finally {
  await rm(projectDir, { recursive: true, force: true });
}
