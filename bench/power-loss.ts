// Power loss during updates on running hosts (issue 13): dev 0.1.0 in a VM is driven through its API
// towards 0.1.1, QEMU is SIGKILLed at a seeded point of one phase (download/write, marking valid,
// activation, the reboot into B), and the VM is started again. Counts hosts that came back, on which
// release, with a sound GPT, and hosts lost (no API within 420 s). One undisturbed run first measures
// each phase, which also gives apply → API ready on B and the bytes the guest downloaded.
// Run: npm run build && flock /tmp/brl-bench.lock node bench/power-loss.ts [--runs 20] [--seed N] [--parallel 2] [--firmware uefi|bios] [--out FILE]
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { mapLimit } from '../src/lib/core/concurrency.ts';
import { buildVariant } from '../src/lib/variant/build.ts';
import { repoDir } from '../test/helpers/cli.ts';
import { extractJournal, readJournal } from '../test/helpers/guest-journal.ts';
import { calibrate, goldenState, powerLossPoints, powerLossRun, type PowerLossOutcome } from '../test/helpers/power-loss.ts';
import { makeUpdateRelease } from '../test/helpers/update-release.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
    parallel: { type: 'string', default: '2' },
    firmware: { type: 'string', default: 'uefi' },
    out: { type: 'string' },
  },
});
const runs = Number(values.runs);
const seed = Number(values.seed);
const parallel = Number(values.parallel);
const firmware = values.firmware === 'bios' ? 'bios' : 'uefi';

const work = mkdtempSync(join(tmpdir(), 'brl-bench-power-'));
const imagesDir = join(repoDir, 'build', 'images', 'x86_64-dev');
const builder = (buildId: string) => (env: NodeJS.ProcessEnv = {}) =>
  buildVariant(repoDir, 'dev', { progress: 'silent', env: { ...process.env, ...env, BRL_BUILD_ID: buildId } });
const latest = join(imagesDir, 'latest');
const latestBefore = existsSync(latest) ? readlinkSync(latest) : undefined;
const cleanUp = (): void => {
  rmSync(work, { recursive: true, force: true });
  // The user's own build stays the latest one.
  rmSync(latest, { force: true });
  if (latestBefore !== undefined) symlinkSync(latestBefore, latest);
  for (const entry of readdirSync(imagesDir)) if (/-benchpower[ab]$/.test(entry)) rmSync(join(imagesDir, entry), { recursive: true, force: true });
};

const log = (line: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

try {
  log(`seed ${seed}, ${runs} runs, ${parallel} at a time, ${firmware}, TCG`);
  const release = await makeUpdateRelease(work, builder('benchpowera'), builder('benchpowerb'));
  const golden = await goldenState(release, firmware);
  const timings = await calibrate(release, golden, firmware);
  // Each target the guest fetched, once (updog's requests carry its query parameters; the 15-byte
  // size pre-check of each image is a second request for the same path).
  const fetched = new Set(release.requests.filter((path) => path.startsWith('/targets/')).map((path) => path.split('?')[0]!));
  const downloaded = [...fetched].map((path) => statSync(join(release.repo, path)).size).reduce((a, b) => a + b, 0);
  const imageBytes = release.b.artifacts.filter((artifact) => artifact.kind === 'os-disk').map((artifact) => statSync(join(release.b.outputDir, artifact.file)).size)[0] ?? 0;
  // updog's own account of the write, from the guest's journal on its data disk.
  const journal = readJournal(extractJournal(join(timings.stateDir, 'data.qcow2'), join(work, 'journal')));
  const wrote = journal.map((entry) => entry.message).find((message) => /^updog: Wrote .* peak RSS \d+ MiB$/.test(message));
  const updogPeakRssMiB = Number(/peak RSS (\d+) MiB/.exec(wrote ?? '')?.[1] ?? Number.NaN);
  rmSync(timings.stateDir, { recursive: true, force: true });
  log(`undisturbed: ${wrote ?? 'no updog summary in the guest journal'}`);
  log(`undisturbed: prepare ${(timings.prepareMs / 1000).toFixed(1)} s, activate ${(timings.activateMs / 1000).toFixed(1)} s, reboot to API ready on B ${(timings.rebootMs / 1000).toFixed(1)} s; targets downloaded ${(downloaded / 1048576).toFixed(1)} MiB`);

  const points = powerLossPoints(seed, runs, timings);
  const outcomes: PowerLossOutcome[] = await mapLimit(points, parallel, async (point) => {
    const outcome = await powerLossRun(release, golden, point, firmware).catch((error: Error): PowerLossOutcome => ({ ...point, cameUp: false, error: `driving the VM: ${error.message}`, stateDir: '' }));
    log(`run ${point.run}: ${point.phase} +${point.delayMs} ms → ${outcome.cameUp ? `up on ${outcome.version} in ${outcome.readySeconds?.toFixed(1)} s${outcome.gptProblems ? ', GPT: problems' : ''}` : `LOST: ${outcome.error?.split('\n')[0]}`}`);
    // A lost host's disks are kept for inspection.
    if (outcome.cameUp && outcome.stateDir) rmSync(outcome.stateDir, { recursive: true, force: true });
    return outcome;
  });
  rmSync(golden, { recursive: true, force: true });
  await release.server.close();

  const lost = outcomes.filter((outcome) => !outcome.cameUp);
  const summary = {
    seed, runs, firmware, load: loadavg()[0], timings: { ...timings, stateDir: undefined }, downloadedBytes: downloaded, osDiskLz4Bytes: imageBytes, updogPeakRssMiB,
    lost: lost.length, gptProblems: outcomes.filter((outcome) => outcome.gptProblems).length, outcomes,
  };
  if (values.out) writeFileSync(values.out, `${JSON.stringify(summary, null, 2)}\n`);
  console.log('| run | phase | cut after | came up | release | API ready | GPT |');
  console.log('|---|---|---|---|---|---|---|');
  for (const outcome of outcomes) {
    console.log(`| ${outcome.run} | ${outcome.phase} | ${(outcome.delayMs / 1000).toFixed(1)} s | ${outcome.cameUp ? 'yes' : '**no**'} | ${outcome.version ?? '–'} | ${outcome.readySeconds === undefined ? '–' : `${outcome.readySeconds.toFixed(1)} s`} | ${outcome.cameUp ? (outcome.gptProblems ? 'problems' : 'clean') : '–'} |`);
  }
  for (const phase of ['download', 'mark-valid', 'activate', 'reboot'] as const) {
    const inPhase = outcomes.filter((outcome) => outcome.phase === phase);
    console.log(`${phase}: ${inPhase.length} runs, ${inPhase.filter((o) => o.version === release.a.version).length} on A, ${inPhase.filter((o) => o.version === release.b.version).length} on B, ${inPhase.filter((o) => !o.cameUp).length} lost`);
  }
  console.log(`hosts lost: ${lost.length} of ${runs} (seed ${seed}); apply → API ready on B undisturbed: ${((timings.prepareMs + timings.activateMs + timings.rebootMs) / 1000).toFixed(1)} s; downloaded ${(downloaded / 1048576).toFixed(1)} MiB for an OS disk of ${(imageBytes / 1048576).toFixed(1)} MiB compressed; updog peak RSS in the guest ${updogPeakRssMiB} MiB`);
  if (lost.length > 0) process.exitCode = 1;
} finally {
  cleanUp();
}
