// The short version of bench/power-loss.ts: the plug pulled once while B is being downloaded and
// written, and once during the reboot into B, at seeded points (BRL_POWER_LOSS_SEED to replay one).
// Either way the host comes back to API ready on a bank dm-verity accepts, and both GPT copies are sound.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devBuilder } from '../helpers/dev-image.ts';
import { goldenState, powerLossPoints, powerLossRun } from '../helpers/power-loss.ts';
import { makeUpdateRelease, type UpdateRelease } from '../helpers/update-release.ts';

const buildA = devBuilder('vmpowera');
const buildB = devBuilder('vmpowerb');
const seed = Number(process.env.BRL_POWER_LOSS_SEED ?? 20261205);
const work = mkdtempSync(join(tmpdir(), 'brl-vm-power-'));

let release: Promise<UpdateRelease> | undefined;
let golden: Promise<string> | undefined;
const prepared = async (): Promise<{ release: UpdateRelease; golden: string }> => {
  release ??= makeUpdateRelease(work, buildA, buildB);
  golden ??= release.then(goldenState);
  return { release: await release, golden: await golden };
};
test.after.always(async () => {
  // Each part is cleaned up on its own: a golden VM that failed to boot must not leave the repository served.
  await (await release?.catch(() => undefined))?.server.close();
  const dir = await golden?.catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

// Windows as measured under TCG on the 2-core CI machine (bench/RESULTS.md § power loss).
const points = powerLossPoints(seed, 4, { prepareMs: 25_000, activateMs: 1_000, rebootMs: 45_000 });

for (const point of points.filter((candidate) => candidate.phase === 'download' || candidate.phase === 'reboot')) {
  test(`power cut ${point.delayMs} ms into the ${point.phase} phase (seed ${seed}): the host comes back on a sound bank`, async (t) => {
    const { release, golden } = await prepared();
    const outcome = await powerLossRun(release, golden, point);
    t.teardown(() => rmSync(outcome.stateDir, { recursive: true, force: true }));
    t.log(JSON.stringify({ ...outcome, stateDir: undefined }));
    t.true(outcome.cameUp, outcome.error);
    t.true(outcome.version === release.a.version || outcome.version === release.b.version, outcome.version);
    t.is(outcome.gptProblems, '', outcome.gptProblems);
  });
}
