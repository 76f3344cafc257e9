// brl's SELinux policy package: secilc's binary policy read back by setools' sesearch (an
// independent reader of the kernel's policy format), and the file contexts as the image build
// applies them.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoDir } from '../../helpers/cli.ts';
import { buildPackages } from '../../../src/lib/packages/build.ts';
import { labelFor, parseFileContexts } from '../../../src/lib/variant/selinux.ts';

const execFileAsync = promisify(execFile);

const unpacked = (async () => {
  const result = await buildPackages(repoDir, { names: ['selinux-policy'], progress: 'silent' });
  const pkg = result.packages.find((entry) => entry.name === 'selinux-policy');
  if (pkg === undefined || pkg.status === 'failed') throw new Error(`selinux-policy: ${pkg?.error}\n${pkg?.logTail?.join('\n')}`);
  const root = mkdtempSync(join(tmpdir(), 'brl-selinux-policy-'));
  await execFileAsync('sh', ['-c', 'rpm2cpio "$1" | cpio -idm --quiet', 'sh', pkg.rpms[0] as string], { cwd: root });
  return join(root, 'x86_64-bottlerocket-linux-gnu/sys-root/etc/selinux');
})();
test.after.always(async () => {
  rmSync(join(await unpacked, '../../../..'), { recursive: true, force: true });
});

/** `sesearch ARGS… policy.33`: the rules it prints, one per line. */
async function sesearch(...args: string[]): Promise<string[]> {
  const { stdout } = await execFileAsync('sesearch', [...args, join(await unpacked, 'fortified/policy/policy.33')]);
  return stdout.split('\n').filter((line) => line.trim() !== '');
}

test('systemd finds an enforcing policy: /etc/selinux/config names fortified, whose policy.33 is an MLS policy of version 33 that allows what it does not name', async (t) => {
  const dir = await unpacked;
  t.is(readFileSync(join(dir, 'config'), 'utf8'), 'SELINUX=enforcing\nSELINUXTYPE=fortified\n');
  const { stdout } = await execFileAsync('seinfo', [join(dir, 'fortified/policy/policy.33')]);
  t.regex(stdout, /Policy Version:\s+33 \(MLS enabled\)/);
  t.regex(stdout, /Handle unknown classes:\s+allow/);
  t.regex((await execFileAsync('seinfo', [join(dir, 'fortified/policy/policy.33'), '--polcap'])).stdout, /nnp_nosuid_transition/, 'runc\'s no_new_privs containers still change domain');
});

test('a workload may write its own storage and read the host\'s, but not change the host\'s files or selinuxfs; the host and superpowered containers may', async (t) => {
  const writes = (source: string, target: string, cls: string, permission: string): Promise<string[]> => sesearch('-A', '-s', source, '-t', target, '-c', cls, '-p', permission);
  for (const confined of ['container_t', 'control_t']) {
    t.deepEqual(await writes(confined, 'local_t', 'dir', 'write'), [], `${confined} cannot add to a host directory on the data partition`);
    t.deepEqual(await writes(confined, 'local_t', 'file', 'write'), [], `${confined} cannot write a host file`);
    t.deepEqual(await writes(confined, 'os_t', 'file', 'write'), [], `${confined} cannot write the root filesystem's files`);
    t.deepEqual(await writes(confined, 'security_t', 'security', 'setenforce'), [], `${confined} cannot turn enforcement off`);
    t.deepEqual(await writes(confined, 'system_t', 'file', 'write'), [], `${confined} cannot write a host process's /proc files`);
    t.not((await writes(confined, 'local_t', 'file', 'read')).length, 0, `${confined} reads host files bound into it`);
    t.not((await writes(confined, 'data_t', 'file', 'write')).length, 0, `${confined} writes container storage`);
  }
  t.deepEqual(await writes('container_t', 'api_socket_t', 'sock_file', 'write'), [], 'a workload cannot connect to the settings API, even given its socket');
  t.not((await writes('control_t', 'api_socket_t', 'sock_file', 'write')).length, 0, 'the control container calls the API');
  for (const unconfined of ['system_t', 'super_t', 'kernel_t']) {
    t.not((await writes(unconfined, 'local_t', 'dir', 'write')).length, 0, `${unconfined} writes the data partition`);
    t.not((await writes(unconfined, 'security_t', 'security', 'load_policy')).length, 0, `${unconfined} may load a policy`);
  }
});

test('domains change where the policy says: systemd leaves kernel_t, anything a runtime starts from container storage is a workload; container storage and the API socket get their types by name', async (t) => {
  t.deepEqual(await sesearch('-T', '-s', 'kernel_t', '-c', 'process'), ['type_transition kernel_t os_t:process system_t;']);
  t.deepEqual(await sesearch('-T', '-s', 'system_t', '-c', 'process'), ['type_transition system_t data_t:process container_t;']);
  t.deepEqual((await sesearch('-T', '-s', 'system_t', '-c', 'dir')).sort(), [
    'type_transition system_t local_t:dir data_t host-containers;',
    'type_transition system_t local_t:dir data_t io.containerd.snapshotter.v1.overlayfs;',
  ]);
  t.deepEqual(await sesearch('-T', '-s', 'system_t', '-c', 'sock_file'), ['type_transition system_t any_t:sock_file api_socket_t api.sock;']);
  t.deepEqual(await sesearch('-A', '-s', 'container_t', '-t', 'super_t', '-c', 'process', '-p', 'transition'), [], 'a workload cannot become superpowered');
});

test('file contexts: the root filesystem is os_t, container storage data_t; memory filesystems and the rest of the data partition are left to the labels the kernel gives them', async (t) => {
  const path = join(await unpacked, 'fortified/contexts/files/file_contexts');
  const specs = parseFileContexts(readFileSync(path, 'utf8'), path);
  t.is(labelFor(specs, '/', 'directory'), 'system_u:object_r:os_t:s0');
  t.is(labelFor(specs, '/usr/bin/containerd', 'file'), 'system_u:object_r:os_t:s0');
  t.is(labelFor(specs, '/etc/selinux/config', 'file'), 'system_u:object_r:os_t:s0');
  t.is(labelFor(specs, '/local', 'directory'), 'system_u:object_r:os_t:s0', 'the mount point itself is part of the root');
  for (const runtime of ['/run', '/run/api.sock', '/dev/null', '/tmp/x', '/proc/1', '/sys/fs', '/local/var/lib/containerd/io.containerd.content.v1.content', '/var/lib/containerd']) {
    t.is(labelFor(specs, runtime, 'file'), undefined, `${runtime} is not relabelled by systemd`);
  }
  // Container storage, for selinux-relabel-local.service (systemd-tmpfiles Z restores these).
  for (const storage of ['/local/host-containers/admin/user-data', '/local/host-containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs/bin/sh', '/local/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs']) {
    t.is(labelFor(specs, storage, 'file'), 'system_u:object_r:data_t:s0', storage);
  }
});
