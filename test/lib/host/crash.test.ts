import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Agent } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiRequest } from '../../../src/lib/host/apiclient/request.ts';
import { createVersionTree, readVersionChain } from '../../../src/lib/host/datastore/layout.ts';
import { COMMIT_LOG, Datastore } from '../../../src/lib/host/datastore/store.ts';
import { runStorewolf } from '../../../src/lib/host/boot/storewolf.ts';
import { hostPaths } from '../../../src/lib/host/paths.ts';
import { SettingsModel } from '../../../src/lib/host/settings/model.ts';
import { makeRoot, send } from './_root.ts';

const loop = fileURLToPath(new URL('../../fixtures/host/commit-loop.ts', import.meta.url));
const apiserverEntry = fileURLToPath(new URL('../../../src/bin/apiserver.ts', import.meta.url));

/** Runs the commit loop and SIGKILLs it after `delayMs`; resolves with the last commit it acknowledged. */
function killMidCommit(base: string, start: number, delayMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [loop, base, String(start)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let acknowledged = start;
    let started = false;
    let stderr = '';
    // A chunk can end inside a number: only whole lines count, the rest waits for the next chunk.
    let partial = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() as string;
      if (lines.length > 0) acknowledged = Number(lines.at(-1));
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

// ---- the apiserver killed under concurrent commits ----

const CLIENTS = 8;
const COMMITS_PER_CLIENT = 500;
const KILLS = 4;
const seed = Number(process.env.BRL_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: a small seeded generator, so a failing run can be repeated with BRL_CRASH_SEED. */
function seeded(state: number): () => number {
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed)) ^ mixed;
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 2 ** 32;
  };
}


interface RunningServer {
  process: ReturnType<typeof spawn>;
  exited: Promise<unknown>;
}

async function startApiserver(root: string): Promise<RunningServer> {
  const child = spawn(process.execPath, [apiserverEntry, '--root', root], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = once(child, 'exit');
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes('listening on')) resolve();
    });
    void exited.then(([code]) => reject(new Error(`apiserver exited ${String(code)} before listening: ${stderr}`)));
  });
  return { process: child, exited };
}

test(`SIGKILL of the apiserver under ${CLIENTS} clients × ${COMMITS_PER_CLIENT} commits keeps every acknowledged commit and no half transaction (seed ${seed})`, async (t) => {
  t.timeout(120_000);
  t.log(`seed ${seed} (repeat with BRL_CRASH_SEED=${seed})`);
  const random = seeded(seed);
  const root = await makeRoot(t);
  await runStorewolf(hostPaths(root), '1.0.0', await SettingsModel.load(root));
  const socket = join(root, 'run/api.sock');
  const total = CLIENTS * COMMITS_PER_CLIENT;
  const killAt = Array.from({ length: KILLS }, () => Math.floor(total * (0.05 + 0.9 * random()))).sort((a, b) => a - b);
  t.log(`kills after ${killAt.join(', ')} acknowledged commits`);

  let server = await startApiserver(root);
  t.teardown(() => void server.process.kill('SIGKILL'));
  const launch = await apiRequest(socket, 'POST', '/tx/commit?tx=bottlerocket-launch');
  t.is(launch.status, 200);

  // Per client: the last commit acknowledged and the last one sent (its outcome unknown if the server died).
  const acknowledged = new Array<number>(CLIENTS).fill(0);
  const sent = new Array<number>(CLIENTS).fill(0);
  let acknowledgedTotal = 0;
  let up: Promise<void> = Promise.resolve();
  let restarting = false;
  const restarts: string[] = [];

  /** Every client's two keys hold the same value, at least its last acknowledged commit and at most its last sent one. */
  const check = async (when: string): Promise<void> => {
    const response = await apiRequest(socket, 'GET', '/settings?prefix=kernel.sysctl');
    if (response.status !== 200) throw new Error(`${when}: GET /settings ${response.status} ${response.body}`);
    const sysctl = ((JSON.parse(response.body) as { kernel?: { sysctl?: Record<string, string> } }).kernel?.sysctl ?? {});
    for (let client = 0; client < CLIENTS; client += 1) {
      const first = Number(sysctl[`crash-c${client}-first`] ?? 0);
      const second = Number(sysctl[`crash-c${client}-second`] ?? 0);
      if (first !== second) throw new Error(`${when}: client ${client} holds half a transaction (${first} and ${second})`);
      if (first < (acknowledged[client] as number) || first > (sent[client] as number)) {
        throw new Error(`${when}: client ${client} holds ${first}, acknowledged ${acknowledged[client]}, sent ${sent[client]}`);
      }
    }
  };

  const killAndRestart = async (): Promise<void> => {
    server.process.kill('SIGKILL');
    await server.exited;
    const when = `restart ${restarts.length + 1} (after ${acknowledgedTotal} acknowledged)`;
    server = await startApiserver(root);
    await check(when);
    restarts.push(when);
  };

  const client = async (index: number): Promise<void> => {
    let agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let value = 1; value <= COMMITS_PER_CLIENT; value += 1) {
      await up;
      const tx = `crash-c${index}`;
      sent[index] = value;
      try {
        const patch = await send(agent, socket, 'PATCH', `/settings?tx=${tx}`, JSON.stringify({ kernel: { sysctl: { [`crash-c${index}-first`]: `${value}`, [`crash-c${index}-second`]: `${value}` } } }));
        if (patch.status !== 204) throw new Error(`PATCH ${patch.status} ${patch.body}`);
        const commit = await send(agent, socket, 'POST', `/tx/commit?tx=${tx}`);
        if (commit.status !== 200) throw new Error(`commit ${commit.status} ${commit.body}`);
      } catch (error) {
        // Refused or cut off by a kill: the outcome of this commit is unknown; the next one goes to the restarted server.
        if (!restarting && !/ECONNRESET|ECONNREFUSED|ENOENT|EPIPE|aborted|socket/i.test(String(error))) throw error;
        agent.destroy();
        agent = new Agent({ keepAlive: true, maxSockets: 1 });
        await up;
        continue;
      }
      acknowledged[index] = value;
      acknowledgedTotal += 1;
      if (killAt.length > 0 && acknowledgedTotal >= (killAt[0] as number) && !restarting) {
        killAt.shift();
        restarting = true;
        up = killAndRestart().finally(() => {
          restarting = false;
        });
      }
    }
    agent.destroy();
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, index) => client(index)));
  await up;
  await check('end of run');
  t.is(restarts.length, KILLS, restarts.join('; '));
  t.true(acknowledgedTotal > total * 0.9, `${acknowledgedTotal} of ${total} commits acknowledged`);

  // A clean stop checkpoints: live/ alone holds the final values and the log is empty.
  server.process.kill('SIGTERM');
  await server.exited;
  const chain = await readVersionChain(hostPaths(root).datastoreBase);
  t.true((await readFile(join(chain!.versionDir, COMMIT_LOG))).every((byte) => byte === 0), 'the log holds no record');
  const store = await Datastore.open(hostPaths(root).datastoreBase);
  const sysctl = store.document(['settings', 'kernel', 'sysctl']);
  for (let index = 0; index < CLIENTS; index += 1) {
    t.is(sysctl[`crash-c${index}-first`], sysctl[`crash-c${index}-second`]);
    t.true(Number(sysctl[`crash-c${index}-first`]) >= (acknowledged[index] as number));
  }
});
