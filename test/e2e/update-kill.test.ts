import test from 'ava';
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readGpt } from '../../src/lib/image/gpt.ts';
import { decodeGptPrio } from '../../src/lib/image/gptprio.ts';
import { gptprioNext } from '../../src/lib/signpost/index.ts';
import { repoDir } from '../helpers/cli.ts';
import { activeSetBytes, buildRelease, makeHost, startRepository } from '../lib/updog/fixtures.ts';

interface Run {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** From "Starting update to" to exit. */
  updateMs: number;
}

/** Runs updog and SIGKILLs it `killAfterMs` after it announces the update (clear, write, verify, flag flips follow). */
function runUpdog(args: string[], killAfterMs: number): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(join(repoDir, 'bin', 'updog'), args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    let started = 0;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (timer === undefined && stderr.includes('Starting update to')) {
        started = performance.now();
        timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.on('exit', (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ exitCode, signal, stderr, updateMs: performance.now() - started });
    });
  });
}

test('SIGKILL at 20 random points of an update never changes set A, and B is marked valid or bootable only with ROOT-B, BOOT-B and HASH-B complete', async (t) => {
  const release = await buildRelease('1.1.0');
  const repo = await startRepository([release], {}, { '(1.0.0, 1.1.0)': [] });
  t.teardown(() => repo.server.close());
  const rootPath = repo.targetPath(release.names.root);
  // Pseudo-random but repeatable kill points spread over the update (caching, clear, writes, verify, flag flips).
  let state = 20_261_125;
  const random = (): number => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
  // Uninterrupted updates show how long the window is on this machine right now; the faster of
  // two, because the first run also pays for cold caches and kills must land inside later runs.
  const slow = { kind: 'slow-body', ms: 4, chunkBytes: 32 * 1024 } as const;
  let full: { updateMs: number } = { updateMs: Number.POSITIVE_INFINITY };
  for (let calibrationRun = 0; calibrationRun < 2; calibrationRun++) {
    const calibration = await makeHost(repo, '1.0.0');
    // The size pre-check and the write each read the root target; both go slowly.
    repo.server.addFaults(rootPath, slow, slow);
    const result = await runUpdog(['update', '--root', calibration.root, '--disk', calibration.disk], 60_000);
    t.is(result.exitCode, 0, result.stderr);
    if (result.updateMs < full.updateMs) full = result;
    await rm(calibration.dir, { recursive: true, force: true });
  }
  const outcomes = { killed: 0, completed: 0, markedB: 0, bootedB: 0 };
  for (let run = 0; run < 20; run++) {
    const host = await makeHost(repo, '1.0.0');
    const before = await activeSetBytes(host.disk);
    // Slow the root image down so kills land inside the write too.
    repo.server.addFaults(rootPath, slow, slow);
    const killAfterMs = Math.floor(random() * full.updateMs * 0.95);
    const result = await runUpdog(['update', '--root', host.root, '--disk', host.disk], killAfterMs);
    if (result.signal === 'SIGKILL') {
      outcomes.killed += 1;
    } else {
      t.is(result.exitCode, 0, result.stderr);
      outcomes.completed += 1;
    }
    t.is(await activeSetBytes(host.disk), before, `run ${run}: set A changed (killed after ${killAfterMs} ms)`);
    const { table, problems, primary, backup } = await readGpt(host.disk);
    // A kill between the two GPT copies leaves them different; a kill inside one copy's write can tear
    // that copy, but the write order keeps the other whole, and GRUB, the kernel and brl read that one.
    t.true(primary.valid || backup.valid, `run ${run}: ${problems.join('; ')}`);
    t.deepEqual(problems.filter((problem) => problem !== 'primary and backup entry arrays differ' && !/^(primary|backup) GPT: /.test(problem)), [], `run ${run}`);
    // B counts as complete only when all three of its partitions hold exactly the release's images.
    const disk = await readFile(host.disk);
    const holds = (name: string, image: Buffer): boolean => {
      const offset = Number(table.partitions.find((p) => p.name === name)!.firstLba) * 512;
      return disk.subarray(offset, offset + image.length).equals(image);
    };
    const incomplete = ([['ROOT', release.root], ['BOOT', release.boot], ['HASH', release.hash]] as const)
      .filter(([role, image]) => !holds(`BOTTLEROCKET-${role}-B`, image)).map(([role]) => `${role}-B`);
    const flagsB = decodeGptPrio(table.partitions.find((p) => p.name === 'BOTTLEROCKET-BOOT-B')!.attributes);
    const markedB = flagsB.priority > 0 || flagsB.triesLeft > 0 || flagsB.successful;
    if (result.signal !== 'SIGKILL') t.deepEqual(incomplete, [], `run ${run}: a finished update left B incomplete`);
    if (markedB) {
      outcomes.markedB += 1;
      // Valid or bootable flags on B only once every partition of B is written.
      t.deepEqual(incomplete, [], `run ${run}: B is marked ${JSON.stringify(flagsB)} but incomplete (killed after ${killAfterMs} ms)`);
    }
    if (gptprioNext(table, host.disk).booted.label === 'B') {
      outcomes.bootedB += 1;
      t.true(markedB, `run ${run}: GRUB would boot B without its flags set`);
    }
    await rm(host.dir, { recursive: true, force: true });
  }
  t.log(`update window ${Math.round(full.updateMs)} ms; killed ${outcomes.killed}, completed ${outcomes.completed}, B marked valid after ${outcomes.markedB}, GRUB would boot B after ${outcomes.bootedB}`);
  t.true(outcomes.killed >= 10, 'at least half of the runs were interrupted');
});
