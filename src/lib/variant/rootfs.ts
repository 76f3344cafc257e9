// Root tree assembly after the install (image-layout.md §5): inventory, os-release, features, /boot split.
import { execFile } from 'node:child_process';
import { createHmac, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readFile, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BrlError, ExitCode } from '../core/errors.ts';
import { findOnPath } from '../doctor/host-tools.ts';
import { collectBootconfig } from './bootconfig.ts';
import type { ImageFeatures } from './features.ts';
import type { ApplicationInventory } from './inventory.ts';
import { baseOsRelease, renderImageFeaturesEnv, renderOsReleaseAppendix, type OsReleaseInput } from './os-release.ts';
import { appendToTreeFile, walkTree } from './tree.ts';

const run = promisify(execFile);

export interface AssembleInput {
  rootTree: string;
  bootTree: string;
  efiTree: string;
  inventory: ApplicationInventory;
  osRelease: OsReleaseInput;
  features: ImageFeatures;
  imageFormat: string;
  /** TUF root role for updog (`PUBLISH_REPO_ROOT_JSON`), copied to /usr/share/updog/root.json. */
  tufRootJson?: string;
  /** CA bundle replacing the packaged one (`BUILDSYS_CACERTS_BUNDLE_OVERRIDE`). */
  caBundle?: string;
  /** Signs BOOT's kernel (uefi-secure-boot); runs before `.vmlinuz.hmac`, which must cover the signed bytes. */
  signKernel?: (vmlinuz: string) => Promise<void>;
  warn: (message: string) => void;
}

export interface AssembleResult {
  /** The text for PRIVATE/bootconfig.data (before framing). */
  bootconfig: string;
  kernelVersion: string | undefined;
}

/** The api-bridge feature turns on brl-host's bridge unit; without the unit the feature cannot work. */
async function enableApiBridge(rootTree: string): Promise<void> {
  const unitDir = join(rootTree, 'usr/lib/systemd/system');
  if (!existsSync(join(unitDir, 'api-bridge.service'))) {
    throw new BrlError('the api-bridge image feature needs /usr/lib/systemd/system/api-bridge.service, which no included package ships', {
      hint: 'include brl-host in included-packages, or drop api-bridge from [image-features]',
      exitCode: ExitCode.badInput,
      code: 'FEATURE_NEEDS_PACKAGE',
    });
  }
  await mkdir(join(unitDir, 'multi-user.target.wants'), { recursive: true });
  await symlink('../api-bridge.service', join(unitDir, 'multi-user.target.wants/api-bridge.service'));
}

/** FIPS's well-known HMAC key for the kernel integrity file (upstream uses the same). */
const vmlinuzHmacKey = 'FIPS-FTW-RHT2009';

export async function assembleRootTree(input: AssembleInput): Promise<AssembleResult> {
  const { rootTree, bootTree, efiTree } = input;
  await mkdir(join(rootTree, 'usr/share/bottlerocket'), { recursive: true });
  await rm(join(rootTree, 'usr/share/bottlerocket/application-inventory.json'), { force: true });
  await appendToTreeFile(rootTree, 'usr/share/bottlerocket/application-inventory.json', `${JSON.stringify(input.inventory, null, 2)}\n`);

  const kernelVersion = await runDepmod(rootTree, input.warn);
  // System.map only serves depmod; upstream deletes it from the image.
  for (const name of await readdir(join(rootTree, 'boot')).catch(() => [] as string[])) {
    if (name === 'System.map' || name.startsWith('System.map-')) await rm(join(rootTree, 'boot', name), { force: true });
  }

  if (input.caBundle !== undefined) await installCaBundle(rootTree, input.caBundle);
  if (input.tufRootJson !== undefined) await installTufRoot(rootTree, input.tufRootJson);

  await mkdir(join(rootTree, 'usr/lib'), { recursive: true });
  const osReleasePath = join(rootTree, 'usr/lib/os-release');
  if (!existsSync(osReleasePath)) await appendToTreeFile(rootTree, 'usr/lib/os-release', baseOsRelease);
  const current = await readFile(osReleasePath, 'utf8');
  await appendToTreeFile(rootTree, 'usr/lib/os-release', `${current.endsWith('\n') || current === '' ? '' : '\n'}${renderOsReleaseAppendix(input.osRelease)}`);

  const env = renderImageFeaturesEnv(input.features, input.imageFormat);
  await rm(join(rootTree, 'usr/share/bottlerocket/image-features.env'), { force: true });
  await rm(join(rootTree, 'usr/share/bottlerocket/image-format.env'), { force: true });
  await appendToTreeFile(rootTree, 'usr/share/bottlerocket/image-features.env', env.features);
  await appendToTreeFile(rootTree, 'usr/share/bottlerocket/image-format.env', env.format);

  if (input.features['api-bridge']) await enableApiBridge(rootTree);

  // /boot: snippets become PRIVATE's bootconfig, efi/ the ESP, the rest the BOOT filesystem.
  const rootBoot = join(rootTree, 'boot');
  await mkdir(bootTree, { recursive: true });
  await mkdir(efiTree, { recursive: true });
  let bootconfig = 'kernel {}\ninit {}\n';
  if (existsSync(rootBoot)) {
    if ((await lstat(rootBoot)).isSymbolicLink()) {
      throw new BrlError('/boot in the image is a symlink; it must be a directory', { exitCode: ExitCode.buildFailed, code: 'SYMLINK_IN_PATH' });
    }
    bootconfig = await collectBootconfig(join(rootBoot, 'boot-config.d'));
    await rm(join(rootBoot, 'boot-config.d'), { recursive: true, force: true });
    for (const name of await readdir(rootBoot)) {
      const from = join(rootBoot, name);
      if (name === 'efi') {
        for (const efiName of await readdir(from)) await rename(join(from, efiName), join(efiTree, efiName));
        await rm(from, { recursive: true, force: true });
      } else {
        await rename(from, join(bootTree, name));
      }
    }
  } else {
    await mkdir(rootBoot);
  }
  const vmlinuz = join(bootTree, 'vmlinuz');
  if (!existsSync(vmlinuz)) {
    throw new BrlError('no kernel: none of the installed packages provides /boot/vmlinuz', {
      hint: 'add a kernel package to included-packages in the variant',
      exitCode: ExitCode.buildFailed,
      code: 'NO_KERNEL',
    });
  }
  if (input.signKernel !== undefined) await input.signKernel(vmlinuz);
  const digest = createHmac('sha512', vmlinuzHmacKey).update(await readFile(vmlinuz)).digest('hex');
  await appendToTreeFile(bootTree, '.vmlinuz.hmac', `${digest}  vmlinuz\n`);
  // BOOT holds the kernel and grub.cfg only root may read (upstream: chmod -R go-rwx).
  for (const entry of await walkTree(bootTree)) {
    if (entry.kind === 'symlink') continue;
    const path = join(bootTree, entry.path);
    await chmod(path, (await lstat(path)).mode & 0o7700);
  }
  await chmod(bootTree, 0o700);
  return { bootconfig, kernelVersion };
}

/** Regenerates module dependency files when the image ships kernel modules (depmod is optional on the host). */
async function runDepmod(rootTree: string, warn: (message: string) => void): Promise<string | undefined> {
  const modulesDir = join(rootTree, 'lib/modules');
  const usrModulesDir = join(rootTree, 'usr/lib/modules');
  const dir = existsSync(usrModulesDir) ? usrModulesDir : existsSync(modulesDir) ? modulesDir : undefined;
  if (dir === undefined) return undefined;
  const versions = (await readdir(dir)).sort();
  const kernelVersion = versions.at(-1);
  if (kernelVersion === undefined) return undefined;
  const versioned = join(rootTree, 'boot', `System.map-${kernelVersion}`);
  const systemMap = existsSync(versioned) ? versioned : join(rootTree, 'boot', 'System.map');
  const depmod = findOnPath('depmod');
  if (depmod === undefined) {
    warn(`depmod is not installed; the module dependency files of kernel ${kernelVersion} are used as packaged`);
  } else {
    const args = ['-a', '-b', rootTree, ...(existsSync(systemMap) ? ['-e', '-F', systemMap] : []), kernelVersion];
    const { stderr } = await run(depmod, args).catch((error: { stderr?: string }) => ({ stderr: error.stderr ?? String(error) }));
    if (/WARNING|ERROR/.test(stderr)) {
      const lines = stderr.trim().split('\n');
      const shown = lines.slice(0, 5).join('\n') + (lines.length > 5 ? `\n… and ${lines.length - 5} more lines` : '');
      throw new BrlError(`depmod reported problems for kernel ${kernelVersion}:\n${shown}`, {
        exitCode: ExitCode.buildFailed,
        code: 'DEPMOD_FAILED',
      });
    }
  }
  return kernelVersion;
}

const caBundlePath = 'usr/share/factory/etc/pki/tls/certs/ca-bundle.crt';
const tufRootPath = 'usr/share/updog/root.json';

/** Every PEM block must be a certificate Node can parse; an empty bundle is refused. */
async function installCaBundle(rootTree: string, source: string): Promise<void> {
  const text = await readFile(source, 'utf8').catch(() => {
    throw new BrlError(`CA bundle ${source} cannot be read`, { exitCode: ExitCode.notFound, code: 'BAD_CA_BUNDLE' });
  });
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new BrlError(`CA bundle ${source} holds no PEM certificate`, { exitCode: ExitCode.badInput, code: 'BAD_CA_BUNDLE' });
  blocks.forEach((block, index) => {
    try {
      new X509Certificate(block);
    } catch (error) {
      throw new BrlError(`CA bundle ${source}: certificate ${index + 1} does not parse: ${(error as Error).message}`, { exitCode: ExitCode.badInput, code: 'BAD_CA_BUNDLE' });
    }
  });
  await mkdir(join(rootTree, 'usr/share/factory/etc/pki/tls/certs'), { recursive: true });
  await rm(join(rootTree, caBundlePath), { force: true });
  await appendToTreeFile(rootTree, caBundlePath, text);
}

async function installTufRoot(rootTree: string, source: string): Promise<void> {
  const text = await readFile(source, 'utf8').catch(() => {
    throw new BrlError(`TUF root ${source} cannot be read`, { exitCode: ExitCode.notFound, code: 'BAD_TUF_ROOT' });
  });
  try {
    JSON.parse(text);
  } catch (error) {
    throw new BrlError(`TUF root ${source} is not JSON: ${(error as Error).message}`, { exitCode: ExitCode.badInput, code: 'BAD_TUF_ROOT' });
  }
  await mkdir(join(rootTree, 'usr/share/updog'), { recursive: true });
  await rm(join(rootTree, tufRootPath), { force: true });
  await appendToTreeFile(rootTree, tufRootPath, text);
}
