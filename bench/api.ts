// Benchmark (PATCH+commit at 1/8/32 clients with the SQLite baseline: bench/api-commit.ts): apiserver GET /settings and PATCH+commit throughput and p99 vs a bare node:http server answering
// the same JSON on a Unix socket (both in their own process, same run), and `apiclient get` wall time vs `node -e 0`.
// Run: flock /tmp/brl-bench.lock node bench/api.ts [--gets 4000] [--commits 400] [--connections 8] [--runs 31]
import { execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent } from 'node:http';
import { call, load, startChild } from './api-call.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { prepareRoot } from '../src/lib/host/boot/prepare-root.ts';
import { runStorewolf } from '../src/lib/host/boot/storewolf.ts';
import { hostPaths } from '../src/lib/host/paths.ts';
import { SettingsModel } from '../src/lib/host/settings/model.ts';

const { values } = parseArgs({
  options: {
    gets: { type: 'string', default: '4000' },
    commits: { type: 'string', default: '400' },
    connections: { type: 'string', default: '8' },
    runs: { type: 'string', default: '31' },
  },
});
const gets = Number(values.gets);
const commits = Number(values.commits);
const connections = Number(values.connections);
const runs = Number(values.runs);
const repo = new URL('..', import.meta.url).pathname;
const node = process.execPath;

const root = await mkdtemp(join(tmpdir(), 'brl-bench-api-'));
const children: ChildProcess[] = [];
try {
  await prepareRoot({ root, variant: 'dev', version: '1.0.0' });
  await runStorewolf(hostPaths(root), '1.0.0', await SettingsModel.load(root));
  const apiSocket = join(root, 'run/api.sock');
  const bareSocket = join(root, 'bare.sock');
  children.push(await startChild(node, [join(repo, 'dist/bin/apiserver.js'), '--root', root], /listening on/));
  const setup = new Agent({ keepAlive: false });
  await call(setup, apiSocket, 'POST', '/tx/commit?tx=bottlerocket-launch');
  const settings = (await call(setup, apiSocket, 'GET', '/settings')).body;
  await writeFile(join(root, 'settings.json'), settings);
  children.push(await startChild(node, [join(repo, 'bench/api-bare-server.ts'), bareSocket, join(root, 'settings.json')], /ready/));

  const rows: string[] = [];
  const compare = async (label: string, total: number, op: (socket: string) => (agent: Agent, index: number) => Promise<void>) => {
    await load(Math.min(200, total), connections, op(apiSocket));
    await load(Math.min(200, total), connections, op(bareSocket));
    const api = await load(total, connections, op(apiSocket));
    const bare = await load(total, connections, op(bareSocket));
    rows.push(
      `| ${label} | ${api.opsPerSecond.toFixed(0)}/s | ${bare.opsPerSecond.toFixed(0)}/s | ${(api.opsPerSecond / bare.opsPerSecond).toFixed(2)}× | ${api.p99.toFixed(2)} ms | ${bare.p99.toFixed(2)} ms |`,
    );
  };
  await compare('GET /settings', gets, (socket) => async (agent) => {
    const response = await call(agent, socket, 'GET', '/settings');
    if (response.status !== 200) throw new Error(`GET ${response.status}`);
  });
  let round = 0;
  await compare('PATCH /settings + POST /tx/commit', commits, (socket) => {
    round += 1;
    return async (agent, index) => {
      const tx = `bench-${round}-${index}`;
      const patch = await call(agent, socket, 'PATCH', `/settings?tx=${tx}`, JSON.stringify({ motd: `m${round}-${index}` }));
      const commit = await call(agent, socket, 'POST', `/tx/commit?tx=${tx}`);
      if (patch.status !== 204 || commit.status !== 200) throw new Error(`PATCH ${patch.status} commit ${commit.status}: ${commit.body}`);
    };
  });

  // Interleaved, so load changes on the shared machine hit all three commands alike.
  const commands: [string, string[]][] = [
    [node, ['-e', '0']],
    [join(repo, 'bin/apiclient'), ['-s', apiSocket, 'get', 'settings.motd']],
    [node, [join(repo, 'dist/bin/apiclient.js'), '-s', apiSocket, 'get', 'settings.motd']],
  ];
  const samples: number[][] = commands.map(() => []);
  for (let index = 0; index < runs; index += 1) {
    for (const [which, [command, args]] of commands.entries()) {
      const begin = performance.now();
      execFileSync(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
      samples[which]!.push(performance.now() - begin);
    }
  }
  const [baseline, wrapped, direct] = samples.map((times) => {
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)] as number;
  }) as [number, number, number];

  const load1 = (await import('node:os')).loadavg()[0]?.toFixed(1);
  process.stdout.write(`## api

\`flock /tmp/brl-bench.lock node bench/api.ts\` (${gets} GETs, ${commits} PATCH+commit pairs, ${connections} keep-alive
connections; apiserver = \`dist/bin/apiserver.js\` on the dev-variant defaults, baseline = bare \`node:http\` answering
the same JSON (bench/api-bare-server.ts); each server in its own process, the load generator in a third). Every
brl commit is durable (its batch's log record fdatasynced); the baseline does no work. Machine: 2 shared cores
(load average ≈ ${load1}), Node ${process.versions.node}, ${new Date().toISOString().slice(0, 10)}.

| operation | apiserver | bare node:http | ratio | apiserver p99 | bare p99 |
|---|---|---|---|---|---|
${rows.join('\n')}

| command (median of ${runs}, interleaved) | wall | vs \`node -e 0\` |
|---|---|---|
| \`node -e 0\` | ${baseline.toFixed(1)} ms | 1.00× |
| \`bin/apiclient get settings.motd\` | ${wrapped.toFixed(1)} ms | ${(wrapped / baseline).toFixed(2)}× |
| \`node dist/bin/apiclient.js get settings.motd\` | ${direct.toFixed(1)} ms | ${(direct / baseline).toFixed(2)}× |
`);
} finally {
  for (const child of children) {
    child.stdin?.end();
    child.kill('SIGTERM');
    await once(child, 'exit').catch(() => undefined);
  }
  await rm(root, { recursive: true, force: true });
}
