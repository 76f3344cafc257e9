// Two versions of the dev image and a signed repository holding the newer one, served on
// 127.0.0.1 for a VM to update from (through `--forward`), as the VM update tests need them.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
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
  /** Builds B into the served repository again (new metadata versions) under another wave policy. */
  rebuild(wavePolicy: string): Promise<void>;
  /** The repository directory being served. */
  repo: string;
  /** The signing key and root role the images trust. */
  key: string;
  roles: string;
  /** Runs `brl …` as B's release engineer (B's Release.toml), failing on a non-zero exit. */
  releaseCommand(args: string[]): Promise<void>;
}

export interface ReleaseOptions {
  /** Declarative migrations from A to B, by target name (`migrate_v0.1.1_<name>.lz4`). */
  migrations?: Record<string, object>;
  /** A `[[waves]]` TOML policy for B; default: the built-in policy, with waves ignored by the host. */
  wavePolicy?: string;
  /** More `[settings.updates]` lines of the user data (e.g. `seed = 2000`). */
  updateSettings?: string[];
}

async function ok(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const result = await brl(args, { cwd: repoDir, env });
  if (result.exitCode !== 0) throw new Error(`brl ${args.join(' ')} failed (${result.exitCode}): ${result.stdout}${result.stderr}`);
}

/**
 * Builds A and B with `build(extraEnv)` of two devBuilders (of one arch), signs B into a repository
 * under `dir` (`dev/<arch>/`) and serves it.
 */
export async function makeUpdateRelease(
  dir: string,
  buildA: (env: NodeJS.ProcessEnv) => Promise<VariantBuildResult>,
  buildB: (env: NodeJS.ProcessEnv) => Promise<VariantBuildResult>,
  options: ReleaseOptions = {},
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
  // The release of B: its version and the migration path from A, as its Release.toml says; the
  // migration documents go where a variant build leaves them, `<prefix>-migrations.tar`.
  const release = join(dir, 'release');
  mkdirSync(release);
  const migrationNames = Object.keys(options.migrations ?? {});
  writeFileSync(join(release, 'Release.toml'), `version = "0.1.1"\n\n[migrations]\n"(0.1.0, 0.1.1)" = ${JSON.stringify(migrationNames)}\n`);
  if (migrationNames.length > 0) {
    const staging = join(dir, 'migrations');
    mkdirSync(staging);
    for (const [name, document] of Object.entries(options.migrations ?? {})) {
      writeFileSync(join(staging, name), execFileSync('lz4', ['-9', '-c'], { input: JSON.stringify(document) }));
    }
    const osDisk = b.artifacts.find((artifact) => artifact.kind === 'os-disk');
    if (osDisk === undefined) throw new Error('B has no OS disk');
    const prefix = basename(osDisk.file).replace(/\.img\.lz4$/, '');
    execFileSync('tar', ['-cf', join(b.outputDir, `${prefix}-migrations.tar`), '-C', staging, ...migrationNames]);
  }
  const repo = join(dir, 'repo');
  const policyFile = join(dir, 'waves.toml');
  const releaseCommand = (args: string[]): Promise<void> => ok(args, { ...process.env, BRL_PROJECT_DIR: release });
  const build = async (wavePolicy: string | undefined): Promise<void> => {
    if (wavePolicy !== undefined) writeFileSync(policyFile, wavePolicy);
    await releaseCommand([
      'repo', 'build', '--variant', 'dev', '--arch', b.arch, '--key', key, '--root-role-path', roles, '--outdir', repo, '--images-dir', b.outputDir,
      ...(wavePolicy === undefined ? [] : ['--wave-policy', policyFile]),
    ]);
  };
  await build(options.wavePolicy);
  const requests: string[] = [];
  const server = await serveDirectory(repo, { onRequest: (line) => requests.push(line.path) });
  const userData = join(dir, 'user-data.toml');
  writeFileSync(userData, [
    '[settings.updates]',
    `metadata-base-url = "http://10.0.2.100:${GUEST_REPO_PORT}/dev/${b.arch}/"`,
    `targets-base-url = "http://10.0.2.100:${GUEST_REPO_PORT}/targets/"`,
    `ignore-waves = ${options.wavePolicy === undefined}`,
    ...(options.updateSettings ?? []),
    '',
  ].join('\n'));
  return { a, b, server, forward: `${GUEST_REPO_PORT}:${new URL(server.url).port}`, userData, requests, rebuild: build, repo, key, roles, releaseCommand };
}

/**
 * For a test file whose tests share one release: A and B built and B served, made on the first
 * `setUp()` and closed and removed after the file's tests. `work` is the file's scratch directory.
 */
export function sharedRelease(
  after: (cleanUp: () => Promise<void>) => void,
  name: string,
  buildA: () => Promise<VariantBuildResult>,
  buildB: () => Promise<VariantBuildResult>,
): { work: string; setUp: () => Promise<UpdateRelease> } {
  const work = mkdtempSync(join(tmpdir(), `brl-vm-${name}-`));
  let release: Promise<UpdateRelease> | undefined;
  after(async () => {
    await (await release?.catch(() => undefined))?.server.close();
    rmSync(work, { recursive: true, force: true });
  });
  return { work, setUp: () => (release ??= makeUpdateRelease(work, buildA, buildB)) };
}
