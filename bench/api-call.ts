// Shared by the api benches: one HTTP request over a Unix socket, a closed-loop load generator, and
// starting a server process and waiting for its ready line.
import { type ChildProcess, spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { createInterface } from 'node:readline';

export function call(agent: Agent, socketPath: string, method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ socketPath, agent, method, path, headers: { 'content-type': 'application/json' } }, (incoming) => {
      const chunks: Buffer[] = [];
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
      incoming.on('end', () => resolve({ status: incoming.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

export interface LoadResult {
  opsPerSecond: number;
  /** Latencies in ms. */
  p50: number;
  p99: number;
}

/** `total` operations from `clients` loops, each on its own keep-alive connection. */
export async function load(total: number, clients: number, operation: (agent: Agent, index: number) => Promise<void>): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < total) {
        const index = next++;
        const begin = performance.now();
        await operation(agent, index);
        latencies.push(performance.now() - begin);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] as number;
  return { opsPerSecond: total / seconds, p50: at(0.5), p99: at(0.99) };
}

/** Starts `command args` and resolves once a line of its stdout or stderr matches `readyPattern`. */
export async function startChild(command: string, args: string[], readyPattern: RegExp): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines = createInterface({ input: child.stdout! });
  const errors = createInterface({ input: child.stderr! });
  await new Promise<void>((resolve, reject) => {
    const check = (line: string) => readyPattern.test(line) && resolve();
    lines.on('line', check);
    errors.on('line', check);
    child.once('exit', (code) => reject(new Error(`${command} ${args.join(' ')} exited ${code}`)));
  });
  return child;
}
