// Bottlerocket's fallback promise on a running host: an update that cannot boot is abandoned by the
// boot loader itself. B is staged and activated through the API, then damaged while the VM is off
// (one byte of ROOT-B's superblock); at the next start GRUB boots B, dm-verity refuses it, gptprio
// has spent B's only try, and the host comes up on A — where a new update can still be applied.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveDirectory } from '../../src/lib/repo/serve.ts';
import { buildManifestName, type BuildManifest } from '../../src/lib/variant/build-manifest.ts';
import { brl, repoDir } from '../helpers/cli.ts';
import { devBuilder, osDiskOf } from '../helpers/dev-image.ts';
import { bootVm } from '../helpers/vm.ts';

const buildA = devBuilder('vmfallbacka');
const buildB = devBuilder('vmfallbackb');
const GUEST_PORT = 8080;

async function ok(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const result = await brl(args, { cwd: repoDir, env });
  if (result.exitCode !== 0) throw new Error(`brl ${args.join(' ')} failed (${result.exitCode}): ${result.stdout}${result.stderr}`);
  return result.stdout;
}

test('a staged B whose root was damaged while the VM was off is abandoned by GRUB; the host comes up on A and can update again', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-vm-fallback-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const roles = join(dir, 'root.json');
  const key = join(dir, 'root.pem');
  await ok(['repo', 'root', 'init', roles]);
  await ok(['repo', 'root', 'gen-key', roles, key, '--type', 'ed25519']);
  for (const role of ['root', 'snapshot', 'targets', 'timestamp']) await ok(['repo', 'root', 'set-threshold', roles, role, '1']);
  await ok(['repo', 'root', 'expire', roles, 'in 52 weeks']);
  await ok(['repo', 'root', 'sign', roles, '--key', key]);
  const a = await buildA({ PUBLISH_REPO_ROOT_JSON: roles });
  const b = await buildB({ PUBLISH_REPO_ROOT_JSON: roles, BUILDSYS_VERSION_IMAGE: '0.1.1' });
  const release = join(dir, 'release');
  mkdirSync(release);
  writeFileSync(join(release, 'Release.toml'), 'version = "0.1.1"\n\n[migrations]\n"(0.1.0, 0.1.1)" = []\n');
  const repo = join(dir, 'repo');
  await ok(['repo', 'build', '--variant', 'dev', '--arch', 'x86_64', '--key', key, '--root-role-path', roles, '--outdir', repo, '--images-dir', b.outputDir], { ...process.env, BRL_PROJECT_DIR: release });
  const server = await serveDirectory(repo);
  t.teardown(() => server.close());
  const userData = join(dir, 'user-data.toml');
  writeFileSync(userData, [
    '[settings.updates]',
    `metadata-base-url = "http://10.0.2.100:${GUEST_PORT}/dev/x86_64/"`,
    `targets-base-url = "http://10.0.2.100:${GUEST_PORT}/targets/"`,
    'ignore-waves = true',
    '',
  ].join('\n'));
  const boot = (resume?: string) => bootVm(t, { image: osDiskOf(a), userData, forwards: [`${GUEST_PORT}:${new URL(server.url).port}`], ...(resume ? { resume } : {}) });

  const first = await boot();
  await first.apiclient('update', 'apply', '--check');
  t.is((JSON.parse((await first.api('GET', '/updates/status')).body) as { update_state: string }).update_state, 'Ready');
  await first.stop();

  // One byte of ROOT-B's ext4 superblock, written into the VM's overlay while it is off.
  const manifest = JSON.parse(readFileSync(join(a.outputDir, buildManifestName), 'utf8')) as BuildManifest;
  const rootB = manifest.disks.os.partitions.find((partition) => partition.key === 'ROOT-B');
  if (rootB === undefined) throw new Error('no ROOT-B in the build manifest');
  const offset = rootB.startMiB * 1024 * 1024 + 1024 + 0x78;
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -P 0xa5 ${offset} 1`, join(first.stateDir, 'os.qcow2')], { stdio: 'ignore' });

  const second = await boot(first.stateDir);
  t.log(`API ready on A after B's failed boot: ${second.readySeconds.toFixed(1)} s`);
  t.is((JSON.parse((await second.api('GET', '/os')).body) as { version_id: string }).version_id, '0.1.0');
  const consoleText = second.console();
  t.regex(consoleText, /verity: .*data block 0 is corrupted/, 'B was tried and refused by dm-verity');
  t.true((consoleText.match(/verity-init: verified root mounted read-only/g) ?? []).length >= 1);

  // The host still updates: B is written again, activated, and boots.
  await second.apiclient('update', 'apply', '--check');
  await second.apiclient('reboot');
  await second.waitForConsole(/verity-init: verified root mounted read-only/, (consoleText.match(/verity-init: verified root mounted read-only/g) ?? []).length + 1, 300);
  await second.waitForApi(300);
  t.is((JSON.parse((await second.api('GET', '/os')).body) as { version_id: string }).version_id, '0.1.1');
});
