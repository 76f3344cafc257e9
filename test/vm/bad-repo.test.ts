// Bad repositories met by a running host, driven through its API as an operator would (pointing
// settings.updates at each in turn): signed by a foreign key, expired, rolled back to older metadata,
// serving a target longer than signed. Each check or apply fails with its reason in
// /updates/status, the host stays on A, bank B is left unbootable, and a sound repository still
// updates it afterwards.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGpt } from '../../src/lib/image/gpt.ts';
import { decodeGptPrio } from '../../src/lib/image/gptprio.ts';
import { serveDirectory } from '../../src/lib/repo/serve.ts';
import { devBuilder, osDiskOf } from '../helpers/dev-image.ts';
import { makeUpdateRelease } from '../helpers/update-release.ts';
import { bootVm } from '../helpers/vm.ts';

const buildA = devBuilder('vmbadrepoa');
const buildB = devBuilder('vmbadrepob');
const GUEST_PORT = 8081;

interface Status {
  update_state: string;
  staging_partition: unknown;
  most_recent_command: { cmd_type: string; cmd_status: string; stderr: string } | null;
}

test('a foreign-signed, an expired, a rolled-back and a lengthened repository each fail with their reason in /updates/status; the host stays on A with B unbootable, and a sound repository updates it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-vm-badrepo-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const release = await makeUpdateRelease(dir, buildA, buildB);
  t.teardown(() => release.server.close());
  const served = join(dir, 'served');
  mkdirSync(served);
  const b = release.b.outputDir;

  // Expired: a timestamp valid for five seconds. Built before the refresh below, so its metadata
  // versions stay below the good repository's whatever the host keeps of it.
  const policy = join(dir, 'expire-fast.toml');
  writeFileSync(policy, 'snapshot_expiration = "2 weeks"\ntargets_expiration = "2 weeks"\ntimestamp_expiration = "5 seconds"\n');
  await release.releaseCommand(['repo', 'build', '--variant', 'dev', '--arch', 'x86_64', '--key', release.key, '--root-role-path', release.roles, '--outdir', join(served, 'expired'), '--images-dir', b, '--expiration-policy', policy]);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  // Rolled back: the repository as first published; the host will have seen a newer one.
  cpSync(release.repo, join(served, 'rollback'), { recursive: true });
  await release.releaseCommand(['repo', 'refresh', release.repo, '--variant', 'dev', '--arch', 'x86_64', '--key', release.key, '--root-role-path', release.roles]);
  cpSync(release.repo, join(served, 'good'), { recursive: true });
  // Lengthened: the newest repository, with bytes appended to B's root image.
  cpSync(release.repo, join(served, 'lengthened'), { recursive: true });
  const rootTarget = readdirSync(join(served, 'lengthened', 'targets')).find((name) => name.endsWith('-root.ext4.lz4'));
  if (rootTarget === undefined) throw new Error('no root image target');
  appendFileSync(join(served, 'lengthened', 'targets', rootTarget), Buffer.alloc(4096, 0x5a));
  // Foreign: the same images signed under a root the host does not trust.
  const foreignRoot = join(dir, 'foreign-root.json');
  const foreignKey = join(dir, 'foreign.pem');
  await release.releaseCommand(['repo', 'root', 'init', foreignRoot]);
  await release.releaseCommand(['repo', 'root', 'gen-key', foreignRoot, foreignKey, '--type', 'ed25519']);
  for (const role of ['root', 'snapshot', 'targets', 'timestamp']) await release.releaseCommand(['repo', 'root', 'set-threshold', foreignRoot, role, '1']);
  await release.releaseCommand(['repo', 'root', 'expire', foreignRoot, 'in 52 weeks']);
  await release.releaseCommand(['repo', 'root', 'sign', foreignRoot, '--key', foreignKey]);
  await release.releaseCommand(['repo', 'build', '--variant', 'dev', '--arch', 'x86_64', '--key', foreignKey, '--root-role-path', foreignRoot, '--outdir', join(served, 'foreign'), '--images-dir', b]);

  const server = await serveDirectory(served);
  t.teardown(() => server.close());
  const vm = await bootVm(t, { image: osDiskOf(release.a), userData: release.userData, forwards: [release.forward, `${GUEST_PORT}:${new URL(server.url).port}`] });
  const status = async (): Promise<Status> => JSON.parse((await vm.api('GET', '/updates/status')).body) as Status;
  const useRepository = async (name: string): Promise<void> => {
    const base = `http://10.0.2.100:${GUEST_PORT}/${name}`;
    await vm.apiclient('set', `updates.metadata-base-url=${base}/dev/x86_64/`, `updates.targets-base-url=${base}/targets/`);
  };
  const fails = async (args: string[], command: string, reason: RegExp): Promise<void> => {
    await t.throwsAsync(vm.apiclient(...args), undefined, `apiclient ${args.join(' ')} fails`);
    const after = await status();
    t.like(after.most_recent_command, { cmd_type: command, cmd_status: 'Failed' });
    t.regex(after.most_recent_command?.stderr ?? '', reason);
  };

  await useRepository('foreign');
  await fails(['update', 'check'], 'refresh', /failed verification/);
  await useRepository('expired');
  await fails(['update', 'check'], 'refresh', /expired metadata/);
  await useRepository('good');
  t.is((JSON.parse((await vm.apiclient('update', 'check')).stdout) as Status).update_state, 'Available');
  await useRepository('rollback');
  await fails(['update', 'check'], 'refresh', /failed verification: .*version/i);
  await useRepository('lengthened');
  await fails(['update', 'apply'], 'prepare', /does not match the signed repository metadata/);
  t.like(await status(), { update_state: 'Available', staging_partition: null });
  t.is((JSON.parse((await vm.api('GET', '/os')).body) as { version_id: string }).version_id, '0.1.0');

  // Bank B as the disk holds it: never marked bootable by any of the runs above.
  await vm.stop();
  const raw = join(dir, 'os.raw');
  execFileSync('qemu-img', ['convert', '-O', 'raw', join(vm.stateDir, 'os.qcow2'), raw]);
  const { table } = await readGpt(raw);
  const bootB = table.partitions.find((partition) => partition.name.endsWith('BOOT-B'));
  t.deepEqual(decodeGptPrio(bootB!.attributes), { priority: 0, triesLeft: 0, successful: false });
  rmSync(raw, { force: true });

  // A sound repository still updates the host.
  const again = await bootVm(t, { image: osDiskOf(release.a), userData: release.userData, forwards: [release.forward, `${GUEST_PORT}:${new URL(server.url).port}`], resume: vm.stateDir });
  await again.apiclient('set', `updates.metadata-base-url=http://10.0.2.100:${GUEST_PORT}/good/dev/x86_64/`, `updates.targets-base-url=http://10.0.2.100:${GUEST_PORT}/good/targets/`);
  await again.apiclient('update', 'apply', '--check');
  t.is((JSON.parse((await again.api('GET', '/updates/status')).body) as Status).update_state, 'Ready');
});
