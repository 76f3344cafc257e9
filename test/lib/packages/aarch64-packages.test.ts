// Cross builds of the real packages: every package of the dev variant builds for aarch64 on this
// machine, with rpm and readelf as the oracles, but grub: its cold arm64-efi build takes 15-20 min,
// so the VM suite builds it (npm run test:vm) and checks it in test/vm/aarch64-image.test.ts.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'smol-toml';
import { repoDir } from '../../helpers/cli.ts';
import { buildPackages } from '../../../src/lib/packages/build.ts';

const execFileAsync = promisify(execFile);
const inVmSuite = ['grub'];
const devPackages = (parse(readFileSync(join(repoDir, 'variants/dev/variant.toml'), 'utf8')) as { 'included-packages': string[] })['included-packages'];

async function rpmQuery(rpm: string, format: string): Promise<string> {
  return (await execFileAsync('rpm', ['-qp', '--nosignature', '--nodigest', '--qf', format, rpm])).stdout;
}

async function elfMachine(path: string): Promise<string> {
  return /^\s*Machine:\s*(.+)$/m.exec((await execFileAsync('readelf', ['-h', path])).stdout)?.[1]?.trim() ?? '';
}

test('every package of the dev variant but grub builds for aarch64: aarch64 or noarch RPMs whose programs are AArch64 code', async (t) => {
  // Subpackages (kernel-modules) come with their package.
  const names = [...new Set(devPackages.filter((name) => !inVmSuite.includes(name)).map((name) => name.replace(/-modules$/, '')))];
  const result = await buildPackages(repoDir, { names, arch: 'aarch64', progress: 'silent' });
  for (const pkg of result.packages) t.not(pkg.status, 'failed', `${pkg.name}: ${pkg.error}\n${pkg.logTail?.join('\n')}`);
  const rpms = result.packages.flatMap((pkg) => pkg.rpms);
  for (const rpm of rpms) t.true(rpm.includes('/build/rpms/aarch64/'), rpm);

  const arches = new Map<string, string>();
  for (const rpm of rpms) arches.set(await rpmQuery(rpm, '%{NAME}'), await rpmQuery(rpm, '%{ARCH}'));
  for (const name of devPackages.filter((name) => !inVmSuite.includes(name))) t.true(arches.has(`bottlerocket-${name}`), `no RPM for ${name}`);
  // JavaScript, data (the SELinux policy too) and the root skeleton are noarch; everything else is built for aarch64.
  const noarch = ['bottlerocket-brl-host', 'bottlerocket-release', 'bottlerocket-selinux-policy', 'bottlerocket-settings-defaults', 'bottlerocket-settings-defaults-dev'];
  for (const [name, arch] of arches) t.is(arch, noarch.includes(name) ? 'noarch' : 'aarch64', name);

  const root = mkdtempSync(join(tmpdir(), 'brl-aarch64-root-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  await execFileAsync('rpm', ['--root', root, '--dbpath', '/.rpmdb', '-i', '--ignorearch', '--nodeps', '--noscripts', '--nosignature', ...rpms]);
  const sysroot = join(root, 'aarch64-bottlerocket-linux-gnu', 'sys-root');
  const programs = [
    'usr/bin/hello',
    'usr/bin/node',
    'usr/libexec/brl/verity-init',
    'usr/lib/aarch64-linux-gnu/libc.so.6',
    'usr/lib/systemd/systemd',
    'usr/lib/modules/6.1.0-56-cloud-arm64/kernel/fs/overlayfs/overlay.ko',
    'usr/bin/containerd',
    'usr/bin/containerd-shim-runc-v2',
    'usr/bin/runc',
  ];
  for (const program of programs) t.is(await elfMachine(join(sysroot, program)), 'AArch64', program);
  // The aarch64 image's updog reads the aarch64 update repository.
  t.regex(readFileSync(join(sysroot, 'etc/updog.toml'), 'utf8'), /^metadata_base_url = "http:\/\/127\.0\.0\.1:8080\/dev\/aarch64\/"$/m);
});
