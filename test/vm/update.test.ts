// Bottlerocket's update promise on a running host, driven only through its API as an operator
// would: a host of dev 0.1.0 finds 0.1.1 in a signed repository served on the test machine's
// 127.0.0.1 (forwarded into the guest, which reaches nothing else), writes it into bank B, stays on A
// when the update is cancelled, reboots into B when activated, marks it good and stays on it across
// another reboot, and goes back to A when rolled back.
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveDirectory } from '../../src/lib/repo/serve.ts';
import { brl, repoDir } from '../helpers/cli.ts';
import { devBuilder, osDiskOf } from '../helpers/dev-image.ts';
import { bootVm } from '../helpers/vm.ts';

const buildA = devBuilder('vmupdatea');
const buildB = devBuilder('vmupdateb');
const GUEST_PORT = 8080;

async function ok(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const result = await brl(args, { cwd: repoDir, env });
  if (result.exitCode !== 0) throw new Error(`brl ${args.join(' ')} failed (${result.exitCode}): ${result.stdout}${result.stderr}`);
  return result.stdout;
}

test('A→B through the API: check finds 0.1.1, apply writes bank B; cancelled it stays on A; activated the reboot comes up on B, which marks itself good and stays; rolled back it boots A', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-vm-update-'));
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
  // The release of B: its version and the migration path from A (none to run), as its Release.toml says.
  const release = join(dir, 'release');
  mkdirSync(release);
  writeFileSync(join(release, 'Release.toml'), 'version = "0.1.1"\n\n[migrations]\n"(0.1.0, 0.1.1)" = []\n');
  const repo = join(dir, 'repo');
  await ok(['repo', 'build', '--variant', 'dev', '--arch', 'x86_64', '--key', key, '--root-role-path', roles, '--outdir', repo, '--images-dir', b.outputDir], { ...process.env, BRL_PROJECT_DIR: release });
  const requests: string[] = [];
  const server = await serveDirectory(repo, { onRequest: (line) => requests.push(line.path) });
  t.teardown(() => server.close());
  const hostPort = new URL(server.url).port;

  const userData = join(dir, 'user-data.toml');
  writeFileSync(userData, [
    '[settings.updates]',
    `metadata-base-url = "http://10.0.2.100:${GUEST_PORT}/dev/x86_64/"`,
    `targets-base-url = "http://10.0.2.100:${GUEST_PORT}/targets/"`,
    'ignore-waves = true',
    '',
  ].join('\n'));
  const vm = await bootVm(t, { image: osDiskOf(a), userData, forwards: [`${GUEST_PORT}:${hostPort}`] });
  const os = async (): Promise<string> => (JSON.parse((await vm.api('GET', '/os')).body) as { version_id: string }).version_id;
  t.is(await os(), '0.1.0');

  const check = JSON.parse((await vm.apiclient('update', 'check')).stdout) as { update_state: string; chosen_update?: { version: string } };
  t.is(check.update_state, 'Available', JSON.stringify(check));
  t.is(check.chosen_update?.version, '0.1.1');
  const started = Date.now();
  await vm.apiclient('update', 'apply');
  t.log(`apply (download and write of bank B under TCG): ${((Date.now() - started) / 1000).toFixed(0)} s`);
  t.true(requests.some((path) => /root\.ext4\.lz4/.test(path)), requests.join('\n'));
  const status = async (): Promise<{ update_state: string }> => JSON.parse((await vm.api('GET', '/updates/status')).body) as { update_state: string };
  t.is((await status()).update_state, 'Ready');

  // Cancelled before the reboot: the host stays on A.
  await vm.apiclient('update', 'cancel');
  t.is((await status()).update_state, 'Staged');
  let boots = 1;
  const reboot = async (): Promise<void> => {
    await vm.apiclient('reboot');
    boots += 1;
    await vm.waitForConsole(/verity-init: verified root mounted read-only/, boots, 300);
    await vm.waitForApi(300);
  };
  await reboot();
  t.is(await os(), '0.1.0');

  // Applied again, the reboot comes up on B; mark-successful-boot ran before the bridge came up,
  // so another reboot stays on B.
  // The update status lives in /run, as upstream's: a new boot starts with a check.
  t.is((await vm.api('GET', '/updates/status')).status, 404);
  t.is((JSON.parse((await vm.apiclient('update', 'check')).stdout) as { update_state: string }).update_state, 'Available');
  await vm.apiclient('update', 'apply');
  t.is((await status()).update_state, 'Ready');
  await reboot();
  t.is(await os(), '0.1.1');
  await reboot();
  t.is(await os(), '0.1.1');

  // brl's rollback action (upstream runs signpost from the admin container): back to A.
  t.is((await vm.api('POST', '/actions/rollback-to-inactive')).status, 204);
  await reboot();
  t.is(await os(), '0.1.0');
});
