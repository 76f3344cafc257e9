// Test roots: a dev-variant root with a seeded datastore and, optionally, a running apiserver.
import { Agent, request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { apiRequest, type ApiResponse } from '../../../src/lib/host/apiclient/request.ts';
import { ApiServer, type ApiServerOptions } from '../../../src/lib/host/apiserver/server.ts';
import { prepareRoot } from '../../../src/lib/host/boot/prepare-root.ts';
import { runStorewolf } from '../../../src/lib/host/boot/storewolf.ts';
import { hostPaths } from '../../../src/lib/host/paths.ts';
import { SettingsModel } from '../../../src/lib/host/settings/model.ts';

export async function makeRoot(t: ExecutionContext, version = '1.0.0'): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'brl-host-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await prepareRoot({ root, variant: 'dev', version });
  return root;
}

/** A root whose datastore holds the committed dev defaults, served on a real Unix socket. */
export async function startServer(
  t: ExecutionContext,
  options: Partial<ApiServerOptions> = {},
): Promise<{ root: string; server: ApiServer; call: (method: string, uri: string, body?: unknown) => Promise<ApiResponse> }> {
  const root = options.root ?? (await makeRoot(t));
  await runStorewolf(hostPaths(root), '1.0.0', await SettingsModel.load(root));
  const server = await ApiServer.start({ ...options, root, log: () => undefined });
  t.teardown(() => server.close());
  const call = (method: string, uri: string, body?: unknown) =>
    apiRequest(server.socketPath, method, uri, body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
  const launch = await call('POST', '/tx/commit?tx=bottlerocket-launch');
  if (launch.status !== 200) throw new Error(`launch commit failed: ${launch.status} ${launch.body}`);
  await server.applier.idle();
  await server.store.settle();
  return { root, server, call };
}

/** One request on a client's keep-alive connection; resolves only with a whole response. */
export function send(agent: Agent, socketPath: string, method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ socketPath, agent, method, path, headers: { 'content-type': 'application/json' } }, (incoming) => {
      const chunks: Buffer[] = [];
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
      incoming.on('error', reject);
      incoming.on('end', () => resolve({ status: incoming.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}
