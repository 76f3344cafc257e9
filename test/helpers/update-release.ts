// Two versions of the dev image and a signed repository holding the newer one, served on
// 127.0.0.1 for a VM to update from (through `--forward`), as the VM update tests need them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serveDirectory, type RunningServer } from '../../src/lib/repo/serve.ts';
import type { VariantBuildResult } from '../../src/lib/variant/build.ts';
import { brl, repoDir } from './cli.ts';

/** The port the guest uses for the repository (10.0.2.100:GUEST_REPO_PORT). */
export const GUEST_REPO_PORT = 8080;

export interface UpdateRelease {
  /** dev 0.1.0, whose /usr/share/updog/root.json trusts the repository. */
  a: VariantBuildResult;
  /** dev 0.1.1, the repository's update. */
  b: VariantBuildResult;
  server: RunningServer;
  /** `--forward` rule that lets the guest reach the repository. */
  forward: string;
  /** User data pointing updog at the repository, waves ignored. */
  userData: string;
  /** Paths the server was asked for. */
  requests: string[];
}

async function ok(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const result = await brl(args, { cwd: repoDir, env });
  if (result.exitCode !== 0) throw new Error(`brl ${args.join(' ')} failed (${result.exitCode}): ${result.stdout}${result.stderr}`);
}

/** Builds A and B with `build(extraEnv)` of two devBuilders, signs B into a repository under `dir` and serves it. */
export async function makeUpdateRelease(
  dir: string,
  buildA: (env: NodeJS.ProcessEnv) => Promise<VariantBuildResult>,
  buildB: (env: NodeJS.ProcessEnv) => Promise<VariantBuildResult>,
): Promise<UpdateRelease> {
  const roles = join(dir, 'root.json');
  const key = join(dir, 'root.pem');
  await ok(['repo', 'root', 'init', roles]);
  await ok(['repo', 'root', 'gen-key', roles, key, '--type', 'ed25519']);
  for (const role of ['root', 'snapshot', 'targets', 'timestamp']) await ok(['repo', 'root', 'set-threshold', roles, role, '1']);
  await ok(['repo', 'root', 'expire', roles, 'in 52 weeks']);
  await ok(['repo', 'root', 'sign', roles, '--key', key]);
  const a = await buildA({ PUBLISH_REPO_ROOT_JSON: roles });
  const b = await buildB({ PUBLISH_REPO_ROOT_JSON: roles, BUILDSYS_VERSION_IMAGE: '0.1.1' });
  // The release of B: its version and the migration path from A (none to run), as its Release.toml says.
  const release = join(dir, 'release');
  mkdirSync(release);
  writeFileSync(join(release, 'Release.toml'), 'version = "0.1.1"\n\n[migrations]\n"(0.1.0, 0.1.1)" = []\n');
  const repo = join(dir, 'repo');
  await ok(['repo', 'build', '--variant', 'dev', '--arch', 'x86_64', '--key', key, '--root-role-path', roles, '--outdir', repo, '--images-dir', b.outputDir], { ...process.env, BRL_PROJECT_DIR: release });
  const requests: string[] = [];
  const server = await serveDirectory(repo, { onRequest: (line) => requests.push(line.path) });
  const userData = join(dir, 'user-data.toml');
  writeFileSync(userData, [
    '[settings.updates]',
    `metadata-base-url = "http://10.0.2.100:${GUEST_REPO_PORT}/dev/x86_64/"`,
    `targets-base-url = "http://10.0.2.100:${GUEST_REPO_PORT}/targets/"`,
    'ignore-waves = true',
    '',
  ].join('\n'));
  return { a, b, server, forward: `${GUEST_REPO_PORT}:${new URL(server.url).port}`, userData, requests };
}
