import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createVersionTree } from '../../../src/lib/host/datastore/layout.ts';
import { Datastore } from '../../../src/lib/host/datastore/store.ts';

const loop = fileURLToPath(new URL('../../fixtures/host/commit-loop.ts', import.meta.url));

/** Runs the commit loop and SIGKILLs it after `delayMs`; resolves with the last commit it acknowledged. */
function killMidCommit(base: string, start: number, delayMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [loop, base, String(start)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let acknowledged = start;
    let started = false;
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = chunk.toString().trim().split('\n');
      acknowledged = Number(lines.at(-1));
      if (!started) {
        started = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code, signal) => (signal === 'SIGKILL' ? resolve(acknowledged) : reject(new Error(`loop exited ${code}: ${stderr}`))));
  });
}

test('SIGKILL during commits leaves the old or the new value, never a mix, and keeps acknowledged commits', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'brl-crash-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  await createVersionTree(base, '1.0.0');
  let last = 0;
  for (let round = 0; round < 8; round += 1) {
    const acknowledged = await killMidCommit(base, last, 20 + Math.floor(Math.random() * 80));
    const store = await Datastore.open(base);
    const settings = store.document(['settings']) as { motd: string; updates: { seed: number } };
    t.is(settings.motd, `v${settings.updates.seed}`, `round ${round}: motd and seed come from one commit`);
    t.true(settings.updates.seed >= acknowledged, `round ${round}: commit ${acknowledged} was acknowledged, found ${settings.updates.seed}`);
    t.true(settings.updates.seed <= acknowledged + 1, `round ${round}: at most the in-flight commit is extra`);
    last = settings.updates.seed;
  }
  t.true(last > 8, 'the loop made progress between kills');
});
