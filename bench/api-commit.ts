// Benchmark: PATCH /settings + POST /tx/commit with 1, 8 and 32 concurrent clients against the apiserver, a bare
// node:http server (bench/api-bare-server.ts, no work) and a node:http server committing the same change into
// node:sqlite with WAL and synchronous=FULL (bench/api-sqlite-server.ts), all in the same run; then the fsync and
// fdatasync calls per commit of the apiserver and the SQLite server, counted by strace in separate passes. Each
// server's CPU per pair (user + system, all threads, from /proc/<pid>/stat) is reported with its throughput.
// Run: flock /tmp/brl-bench.lock node bench/api-commit.ts [--commits 2000] [--rounds 3] [--count-commits 1000]
import { execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, fdatasyncSync, fsyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent } from 'node:http';
import { call, load, startChild, type LoadResult } from './api-call.ts';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { prepareRoot } from '../src/lib/host/boot/prepare-root.ts';
import { runStorewolf } from '../src/lib/host/boot/storewolf.ts';
import { hostPaths } from '../src/lib/host/paths.ts';
import { SettingsModel } from '../src/lib/host/settings/model.ts';

const { values } = parseArgs({
  options: {
    commits: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
    'count-commits': { type: 'string', default: '1000' },
  },
});
const commits = Number(values.commits);
const rounds = Number(values.rounds);
const countCommits = Number(values['count-commits']);
const CLIENT_COUNTS = [1, 8, 32];
const repo = new URL('..', import.meta.url).pathname;
const node = process.execPath;

let round = 0;

/** `total` PATCH+commit pairs from `clients` loops, each on its own keep-alive connection. */
function commitLoad(socket: string, clients: number, total: number): Promise<LoadResult> {
  round += 1;
  const tag = round;
  return load(total, clients, async (agent, index) => {
    const tx = `bench-${tag}-${index}`;
    const patch = await call(agent, socket, 'PATCH', `/settings?tx=${tx}`, JSON.stringify({ motd: `m${tag}-${index}` }));
    const commit = await call(agent, socket, 'POST', `/tx/commit?tx=${tx}`);
    if (patch.status !== 204 || commit.status !== 200) throw new Error(`${socket}: PATCH ${patch.status} commit ${commit.status}: ${commit.body}`);
  });
}

/** CPU time (user + system, all threads) a process has used, in µs, from /proc/<pid>/stat (clock ticks of 10 ms). */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** A load round against one server, with the server's CPU per PATCH+commit pair. */
async function measuredLoad(server: Server, pid: number, clients: number, total: number): Promise<LoadResult & { cpuPerPair: number }> {
  const before = cpuMicros(pid);
  const result = await commitLoad(server.socket, clients, total);
  return { ...result, cpuPerPair: (cpuMicros(pid) - before) / total };
}

/** The apiserver stops on SIGTERM (after checkpointing its log), the others when stdin closes (SQLite closes its database). */
async function stop(child: ChildProcess, server: Server, pid = child.pid): Promise<void> {
  const exited = once(child, 'exit');
  if (server.stopsOnSigterm) process.kill(pid!, 'SIGTERM');
  else child.stdin?.end();
  await exited;
}

/**
 * Median milliseconds of one 128-byte write over zeros plus fdatasync in a preallocated file in `dir`, as the
 * apiserver's log does it: the least a durable commit waits on this disk at this moment.
 */
function fdatasyncMs(dir: string, samples = 100): number {
  const path = join(dir, 'fdatasync-probe');
  const fd = openSync(path, 'w+');
  try {
    writeSync(fd, Buffer.alloc(samples * 128));
    fsyncSync(fd);
    const record = Buffer.alloc(128, 1);
    const times: number[] = [];
    for (let index = 0; index < samples; index += 1) {
      const start = performance.now();
      writeSync(fd, record, 0, record.length, index * record.length);
      fdatasyncSync(fd);
      times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(samples / 2)]!;
  } finally {
    closeSync(fd);
    rmSync(path);
  }
}

interface Server {
  name: string;
  socket: string;
  /** Program and arguments; `strace` wraps them in the counting passes. */
  command: string[];
  ready: RegExp;
  stopsOnSigterm: boolean;
}

const root = await mkdtemp(join(tmpdir(), 'brl-bench-commit-'));
const children: ChildProcess[] = [];
try {
  await prepareRoot({ root, variant: 'dev', version: '1.0.0' });
  await runStorewolf(hostPaths(root), '1.0.0', await SettingsModel.load(root));
  // The apiserver runs from src/ (Node strips the types), so the bench measures the working tree without a build.
  const apiserver: Server = { name: 'apiserver', socket: join(root, 'run/api.sock'), command: [node, join(repo, 'src/bin/apiserver.ts'), '--root', root], ready: /listening on/, stopsOnSigterm: true };
  const bare: Server = { name: 'bare node:http', socket: join(root, 'bare.sock'), command: [node, join(repo, 'bench/api-bare-server.ts'), join(root, 'bare.sock'), join(root, 'settings.json')], ready: /ready/, stopsOnSigterm: false };
  const sqlite: Server = { name: 'node:http + node:sqlite', socket: join(root, 'sqlite.sock'), command: [node, join(repo, 'bench/api-sqlite-server.ts'), join(root, 'sqlite.sock'), join(root, 'settings.db')], ready: /ready/, stopsOnSigterm: false };

  const api = await startChild(apiserver.command[0]!, apiserver.command.slice(1), apiserver.ready);
  children.push(api);
  const setup = new Agent({ keepAlive: false });
  await call(setup, apiserver.socket, 'POST', '/tx/commit?tx=bottlerocket-launch');
  await writeFile(join(root, 'settings.json'), (await call(setup, apiserver.socket, 'GET', '/settings')).body);
  for (const server of [bare, sqlite]) children.push(await startChild(server.command[0]!, server.command.slice(1), server.ready));

  // Throughput: for each client count, the three servers take turns `rounds` times (load on the shared machine
  // hits all of them alike); the median round of each is reported.
  const servers = [apiserver, bare, sqlite];
  const pids = new Map(servers.map((server, index) => [server.name, children[index]!.pid!]));
  const results = new Map<string, LoadResult & { cpuPerPair: number }>();
  const fdatasyncLatency = new Map<number, number>();
  for (const clients of CLIENT_COUNTS) {
    for (const server of servers) await commitLoad(server.socket, clients, Math.min(200, commits));
    const samples = new Map(servers.map((server) => [server.name, [] as (LoadResult & { cpuPerPair: number })[]]));
    const latencies: number[] = [];
    for (let index = 0; index < rounds; index += 1) {
      latencies.push(fdatasyncMs(root));
      for (const server of servers) samples.get(server.name)!.push(await measuredLoad(server, pids.get(server.name)!, clients, commits));
    }
    latencies.sort((a, b) => a - b);
    fdatasyncLatency.set(clients, latencies[Math.floor(latencies.length / 2)]!);
    for (const [name, runs] of samples) {
      runs.sort((a, b) => a.opsPerSecond - b.opsPerSecond);
      results.set(`${name}/${clients}`, runs[Math.floor(runs.length / 2)]!);
    }
  }
  for (const [index, child] of children.splice(0).entries()) await stop(child, [apiserver, bare, sqlite][index]!);

  // fsyncs per commit: each durable server again under `strace -f -c` (seccomp filter: only the two calls
  // stop the process), once without load and once per client count; the difference over the commits made.
  const countFsyncs = async (server: Server, clients: number, total: number): Promise<number> => {
    const summary = join(root, `strace-${server.name.replace(/\W+/g, '-')}-${clients}-${total}.txt`);
    const traced = await startChild('strace', ['-f', '-c', '--seccomp-bpf', '-e', 'trace=fsync,fdatasync', '-o', summary, ...server.command], server.ready);
    const tracee = Number((await readFile(`/proc/${traced.pid}/task/${traced.pid}/children`, 'utf8')).trim().split(/\s+/)[0]);
    if (total > 0) await commitLoad(server.socket, clients, total);
    await stop(traced, server, tracee);
    let calls = 0;
    for (const line of (await readFile(summary, 'utf8')).split('\n')) {
      const fields = line.trim().split(/\s+/);
      if (fields.at(-1) === 'fsync' || fields.at(-1) === 'fdatasync') calls += Number(fields[3]);
    }
    return calls;
  };
  const fsyncsPerCommit = new Map<string, number>();
  for (const server of [apiserver, sqlite]) {
    const idle = await countFsyncs(server, 1, 0);
    for (const clients of CLIENT_COUNTS) {
      fsyncsPerCommit.set(`${server.name}/${clients}`, ((await countFsyncs(server, clients, countCommits)) - idle) / countCommits);
    }
  }

  const rows: string[] = [];
  for (const clients of CLIENT_COUNTS) {
    const brl = results.get(`apiserver/${clients}`)!;
    const plain = results.get(`bare node:http/${clients}`)!;
    const db = results.get(`node:http + node:sqlite/${clients}`)!;
    const syncMs = fdatasyncLatency.get(clients)!;
    // Each client's cycle is at least (a)'s (the same requests, no work) plus one fdatasync its commit waits for.
    const bound = 1 / (1 + (syncMs / 1000) * (plain.opsPerSecond / clients));
    rows.push(
      `| ${clients} | ${brl.opsPerSecond.toFixed(0)}/s | ${plain.opsPerSecond.toFixed(0)}/s | ${db.opsPerSecond.toFixed(0)}/s | ` +
        `**${(brl.opsPerSecond / plain.opsPerSecond).toFixed(2)}×** | **${(brl.opsPerSecond / db.opsPerSecond).toFixed(2)}×** | ` +
        `${brl.p99.toFixed(2)} / ${plain.p99.toFixed(2)} / ${db.p99.toFixed(2)} ms | ` +
        `${fsyncsPerCommit.get(`apiserver/${clients}`)!.toFixed(3)} | ${fsyncsPerCommit.get(`node:http + node:sqlite/${clients}`)!.toFixed(3)} | ` +
        `${syncMs.toFixed(2)} ms | ${bound.toFixed(2)}× | ${brl.cpuPerPair.toFixed(0)} / ${plain.cpuPerPair.toFixed(0)} / ${db.cpuPerPair.toFixed(0)} µs |`,
    );
  }
  const strace = execFileSync('strace', ['-V'], { encoding: 'utf8' }).split('\n')[0];
  process.stdout.write(`### api: PATCH+commit with 1, 8 and 32 clients (group commit)

\`flock /tmp/brl-bench.lock node bench/api-commit.ts\` (${commits} PATCH+commit pairs per client count and server,
median of ${rounds} rounds taken in turns; each client on its own keep-alive connection, a new transaction per pair
setting \`settings.motd\`). (a) bare \`node:http\` answering without work; (b) \`node:http\` + \`node:sqlite\`
(\`journal_mode=WAL\`, \`synchronous=FULL\`, one SQL transaction per commit, pending changes in memory). fsyncs per
commit: \`fsync\` + \`fdatasync\` calls counted by ${strace} (\`-f -c --seccomp-bpf\`) in separate passes of
${countCommits} commits, minus a pass with none (start and stop, checkpoint on SIGTERM included). Machine: 2 shared
cores (load average ≈ ${loadavg()[0]?.toFixed(1)}), Node ${process.versions.node}, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC.
fdatasync: median of 100 writes of 128 bytes over zeros, each followed by \`fdatasync\`, in a preallocated file beside
the datastore, before each round (median of the rounds). Bound vs (a): the most any server that waits for one
fdatasync per commit can reach against (a) here, 1 / (1 + fdatasync × (a) ÷ clients), since each client's cycle is at
least (a)'s plus one fdatasync. CPU per pair: each server's user + system time over the round (all its threads, from
\`/proc/<pid>/stat\`, 10 ms ticks) divided by the pairs, in the round reported.

| clients | apiserver | (a) bare | (b) sqlite | vs (a) | vs (b) | p99 brl / (a) / (b) | apiserver fsyncs/commit | sqlite fsyncs/commit | fdatasync | bound vs (a) | CPU per pair brl / (a) / (b) |
|---|---|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}
`);
} finally {
  for (const child of children) {
    child.stdin?.end();
    child.kill('SIGTERM');
    await once(child, 'exit').catch(() => undefined);
  }
  await rm(root, { recursive: true, force: true });
}
