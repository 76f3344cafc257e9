import test from 'ava';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkSelinuxBoot, majorLsm } from '../../../src/lib/variant/selinux-boot.ts';

// The LSM lines of Debian bookworm's 6.1 cloud kernel config, which starts AppArmor by default.
const debianConfig = [
  'CONFIG_SECURITY=y',
  'CONFIG_SECURITY_SELINUX=y',
  '# CONFIG_SECURITY_SELINUX_BOOTPARAM is not set',
  'CONFIG_SECURITY_SMACK=y',
  'CONFIG_SECURITY_TOMOYO=y',
  'CONFIG_SECURITY_APPARMOR=y',
  'CONFIG_DEFAULT_SECURITY_APPARMOR=y',
  'CONFIG_LSM="landlock,lockdown,yama,loadpin,safesetid,integrity,apparmor,selinux,smack,tomoyo,bpf"',
].join('\n');

test('the major LSM: CONFIG_LSM order unless security= or lsm= say otherwise, and only one that is built in', (t) => {
  t.is(majorLsm(debianConfig, ['console=ttyS0']), 'apparmor', 'Debian\'s kernel starts AppArmor; selinux=1 alone would not change that');
  t.is(majorLsm(debianConfig, ['selinux=1']), 'apparmor');
  t.is(majorLsm(debianConfig, ['security=selinux']), 'selinux');
  t.is(majorLsm(debianConfig, ['security=apparmor', 'security=selinux']), 'selinux', 'the last word wins, as in the kernel');
  t.is(majorLsm(debianConfig, ['security=selinux', 'lsm=landlock,yama,bpf']), undefined, 'lsm= overrides security=');
  t.is(majorLsm(debianConfig, ['lsm=landlock,lockdown,yama,integrity,selinux,bpf']), 'selinux');
  t.is(majorLsm(debianConfig.replace('CONFIG_SECURITY_SELINUX=y', '# CONFIG_SECURITY_SELINUX is not set'), ['security=selinux']), undefined, 'not built in');
  t.is(majorLsm('CONFIG_SECURITY_SELINUX=y\nCONFIG_LSM="lockdown,yama,selinux,bpf"', []), 'selinux', 'an upstream-style kernel needs no parameter');
});

function tree(withPolicy: 'none' | 'complete' | 'config-only'): { rootTree: string; kernelConfig: string } {
  const dir = mkdtempSync(join(tmpdir(), 'brl-selinux-boot-'));
  const rootTree = join(dir, 'root');
  mkdirSync(join(rootTree, 'etc'), { recursive: true });
  if (withPolicy !== 'none') {
    mkdirSync(join(rootTree, 'etc/selinux/fortified/policy'), { recursive: true });
    writeFileSync(join(rootTree, 'etc/selinux/config'), 'SELINUX=enforcing\nSELINUXTYPE=fortified\n');
    if (withPolicy === 'complete') writeFileSync(join(rootTree, 'etc/selinux/fortified/policy/policy.33'), 'policy');
  }
  return { rootTree, kernelConfig: debianConfig };
}

test('an image with a policy and security=selinux enforces; without either, SELinux is off', async (t) => {
  const variantManifest = 'variants/x/variant.toml';
  t.deepEqual(await checkSelinuxBoot({ ...tree('complete'), kernelParameters: ['security=selinux'], variantManifest }), { lsm: 'selinux', policy: 'fortified', enforcing: true });
  t.deepEqual(await checkSelinuxBoot({ ...tree('none'), kernelParameters: [], variantManifest }), { lsm: 'apparmor', policy: undefined, enforcing: false });
});

test('SELinux started without a policy (systemd would freeze) and a policy nothing loads are refused, naming the variant and the fix', async (t) => {
  const variantManifest = 'variants/x/variant.toml';
  await t.throwsAsync(checkSelinuxBoot({ ...tree('none'), kernelParameters: ['security=selinux'], variantManifest }), {
    message: /^variants\/x\/variant\.toml: the kernel starts SELinux, enforcing, but no package installs \/etc\/selinux\/config/,
  });
  const notStarted = await t.throwsAsync(checkSelinuxBoot({ ...tree('complete'), kernelParameters: [], variantManifest }), {
    message: 'variants/x/variant.toml: the root carries the SELinux policy "fortified", but the kernel starts apparmor, so nothing would enforce it',
  });
  t.like(notStarted, { code: 'SELINUX_NOT_STARTED' });
  t.regex((notStarted as Error & { hint?: string }).hint ?? '', /security=selinux/);
  await t.throwsAsync(checkSelinuxBoot({ ...tree('config-only'), kernelParameters: ['security=selinux'], variantManifest }), {
    message: /SELINUXTYPE=fortified, but the root has no \/etc\/selinux\/fortified\/policy\/policy\.<version>/,
  });
});

test('a root without a kernel config (the minimal test kernels) is not judged', async (t) => {
  const { rootTree } = tree('complete');
  t.deepEqual(await checkSelinuxBoot({ rootTree, kernelConfig: undefined, kernelParameters: [], variantManifest: 'v.toml' }), { lsm: undefined, policy: 'fortified', enforcing: false });
});
