// Whether the image's kernel will start SELinux, and whether its root carries a policy for it:
// the two must agree, or the image either does not boot or silently does not enforce.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';

/** What the build found: printed by `brl build variant` and kept in its JSON result. */
export interface SelinuxSummary {
  /** The major LSM the kernel starts (selinux, apparmor, smack), or undefined when none or unknown. */
  lsm: string | undefined;
  /** SELINUXTYPE of the root's /etc/selinux/config, when the root has one. */
  policy: string | undefined;
  /** SELinux runs and enforces (the command line always says enforcing=1). */
  enforcing: boolean;
}

// The LSMs of which Linux 6.1 starts only one: the first of them in CONFIG_LSM that is built in.
const exclusiveLsms = ['selinux', 'smack', 'apparmor'];

/**
 * The major LSM a kernel with this config starts under these parameters, as security/security.c
 * decides: `lsm=` replaces CONFIG_LSM, `security=` picks one major LSM, otherwise CONFIG_LSM's order.
 */
export function majorLsm(kernelConfig: string, parameters: readonly string[]): string | undefined {
  const config = new Map<string, string>();
  for (const match of kernelConfig.matchAll(/^(CONFIG_\w+)=(.*)$/gm)) config.set(match[1] as string, (match[2] as string).replace(/^"(.*)"$/, '$1'));
  const builtIn = (lsm: string): boolean => config.get(`CONFIG_SECURITY_${lsm.toUpperCase()}`) === 'y';
  const parameter = (name: string): string | undefined => parameters.findLast((word) => word.startsWith(`${name}=`))?.slice(name.length + 1);
  const firstExclusive = (list: string): string | undefined => list.split(',').find((lsm) => exclusiveLsms.includes(lsm) && builtIn(lsm));
  const lsmList = parameter('lsm');
  if (lsmList !== undefined) return firstExclusive(lsmList);
  const legacy = parameter('security');
  if (legacy !== undefined) return exclusiveLsms.includes(legacy) && builtIn(legacy) ? legacy : undefined;
  return firstExclusive(config.get('CONFIG_LSM') ?? '');
}

/** SELINUXTYPE of `<root>/etc/selinux/config`, checked to name a policy the root holds. */
async function rootPolicy(rootTree: string): Promise<string | undefined> {
  const configPath = join(rootTree, 'etc/selinux/config');
  if (!existsSync(configPath)) return undefined;
  const type = /^SELINUXTYPE=(\S+)\s*$/m.exec(await readFile(configPath, 'utf8'))?.[1];
  const policyDir = join(rootTree, 'etc/selinux', type ?? '', 'policy');
  if (type === undefined || !existsSync(policyDir) || !(await readdir(policyDir)).some((name) => /^policy\.\d+$/.test(name))) {
    throw new BrlError(`/etc/selinux/config in the root names SELINUXTYPE=${type ?? '(none)'}, but the root has no /etc/selinux/${type ?? '<type>'}/policy/policy.<version>`, {
      hint: 'the package that installs /etc/selinux/config must install the compiled policy beside it (see packages-specs/selinux-policy)',
      exitCode: ExitCode.badInput,
      code: 'SELINUX_POLICY_MISSING',
    });
  }
  return type;
}

/**
 * Refuses an image whose kernel starts SELinux (enforcing) without a policy, which systemd answers
 * by freezing at boot, and one that carries a policy its kernel will never load. A root without a
 * kernel config (the minimal test kernels) is not judged.
 */
export async function checkSelinuxBoot(options: {
  rootTree: string;
  /** The text of the kernel's /boot/config; undefined when the kernel has none. */
  kernelConfig: string | undefined;
  kernelParameters: readonly string[];
  variantManifest: string;
}): Promise<SelinuxSummary> {
  const policy = await rootPolicy(options.rootTree);
  if (options.kernelConfig === undefined) return { lsm: undefined, policy, enforcing: false };
  const lsm = majorLsm(options.kernelConfig, options.kernelParameters);
  if (lsm === 'selinux' && policy === undefined) {
    throw new BrlError(`${options.variantManifest}: the kernel starts SELinux, enforcing, but no package installs /etc/selinux/config and a policy: systemd would stop the boot ("Failed to load SELinux policy")`, {
      hint: 'add "selinux-policy" to included-packages, or take the security=/lsm= parameter that starts SELinux out of kernel-parameters',
      exitCode: ExitCode.badInput,
      code: 'SELINUX_WITHOUT_POLICY',
    });
  }
  if (lsm !== 'selinux' && policy !== undefined) {
    throw new BrlError(`${options.variantManifest}: the root carries the SELinux policy "${policy}", but the kernel starts ${lsm ?? 'no major LSM'}, so nothing would enforce it`, {
      hint: 'add "security=selinux" to kernel-parameters (Debian\'s kernels start AppArmor unless told)',
      exitCode: ExitCode.badInput,
      code: 'SELINUX_NOT_STARTED',
    });
  }
  return { lsm, policy, enforcing: lsm === 'selinux' };
}
