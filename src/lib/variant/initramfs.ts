// The initramfs of images whose kernel cannot set up the verity root itself (Debian's: dm-verity,
// virtio and the block drivers are modules, CONFIG_DM_INIT is off). It holds verity-init as /init
// and the modules that reach the root, in load order; see packages-specs/verity-init.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { readElf } from '../packages/elf.ts';
import { writeCpio, type CpioEntry } from './cpio.ts';

/** Where the verity-init package installs the program, inside the image root. */
export const VERITY_INIT_PATH = 'usr/libexec/brl/verity-init';
/** The module list verity-init reads (one path per line, in load order). */
const MODULE_LIST = 'etc/verity-init/modules';

/**
 * What the root needs before verity-init can mount it: virtio and Xen disks (NVMe is built into
 * the kernels brl ships), device-mapper with verity, erofs for erofs roots. Names missing from a
 * kernel (built in, or absent) are skipped; dependencies come from modules.dep.
 */
export const ROOT_MODULES = ['virtio_pci', 'virtio_blk', 'xen-blkfront', 'dm-verity'] as const;

export interface InitramfsInput {
  rootTree: string;
  kernelVersion: string;
  rootFilesystem: 'ext4' | 'erofs';
  epoch: number;
}

export interface Initramfs {
  archive: Buffer;
  modules: string[];
}

const moduleName = (path: string): string => basename(path).replace(/\.ko(\.[a-z]+)?$/, '').replaceAll('-', '_');

/** Module files in load order: each one's dependencies (from modules.dep) before it. */
export function moduleLoadOrder(modulesDep: string, wanted: readonly string[]): string[] {
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of modulesDep.split('\n')) {
    const [module, rest = ''] = line.split(':');
    if (!module) continue;
    deps.set(module, rest.trim().split(/\s+/).filter(Boolean));
    byName.set(moduleName(module), module);
  }
  const order: string[] = [];
  const visit = (module: string, trail: string[]): void => {
    if (order.includes(module)) return;
    if (trail.includes(module)) throw new Error(`module dependency cycle: ${[...trail, module].join(' → ')}`);
    for (const dep of deps.get(module) ?? []) visit(dep, [...trail, module]);
    order.push(module);
  };
  for (const name of wanted) {
    const module = byName.get(name.replaceAll('-', '_'));
    if (module !== undefined) visit(module, []);
  }
  return order;
}

/** undefined when the root has no verity-init (the image then boots without an initramfs). */
export async function buildInitramfs(input: InitramfsInput): Promise<Initramfs | undefined> {
  const initPath = join(input.rootTree, VERITY_INIT_PATH);
  if (!existsSync(initPath)) return undefined;
  // The initramfs holds no loader or libraries: a dynamically linked /init could never start.
  if ((await readElf(initPath)).hasInterpreter) {
    throw new BrlError(`/${VERITY_INIT_PATH} is dynamically linked; the initramfs needs a static program`, {
      hint: 'link verity-init with -static-pie (after the hardening LDFLAGS, whose -pie would win otherwise)',
      exitCode: ExitCode.buildFailed,
      code: 'INIT_NOT_STATIC',
    });
  }
  const modulesDir = [join(input.rootTree, 'usr/lib/modules', input.kernelVersion), join(input.rootTree, 'lib/modules', input.kernelVersion)].find((dir) => existsSync(join(dir, 'modules.dep')));
  if (modulesDir === undefined) {
    throw new BrlError(`the initramfs needs the kernel's modules, but the root has no modules.dep for ${input.kernelVersion}`, {
      hint: 'include the kernel-modules package (and depmod on the build host)',
      exitCode: ExitCode.buildFailed,
      code: 'NO_KERNEL_MODULES',
    });
  }
  const wanted = [...ROOT_MODULES, ...(input.rootFilesystem === 'erofs' ? ['erofs'] : [])];
  const modules = moduleLoadOrder(await readFile(join(modulesDir, 'modules.dep'), 'utf8'), wanted);
  if (!modules.some((module) => moduleName(module) === 'dm_verity')) {
    throw new BrlError(`kernel ${input.kernelVersion} has no dm-verity module in modules.dep`, { exitCode: ExitCode.buildFailed, code: 'NO_DM_VERITY' });
  }
  const entries: CpioEntry[] = [
    { kind: 'dir', path: 'dev', mode: 0o755 },
    { kind: 'char', path: 'dev/console', mode: 0o600, major: 5, minor: 1 },
    { kind: 'dir', path: 'etc', mode: 0o755 },
    { kind: 'dir', path: 'etc/verity-init', mode: 0o755 },
    { kind: 'file', path: MODULE_LIST, mode: 0o644, data: Buffer.from(modules.map((module) => `/modules/${basename(module)}\n`).join('')) },
    { kind: 'file', path: 'init', mode: 0o755, data: await readFile(initPath) },
    { kind: 'dir', path: 'modules', mode: 0o755 },
    ...(await Promise.all(modules.map(async (module): Promise<CpioEntry> => ({ kind: 'file', path: `modules/${basename(module)}`, mode: 0o644, data: await readFile(join(modulesDir, module)) })))),
    { kind: 'dir', path: 'newroot', mode: 0o755 },
    { kind: 'dir', path: 'proc', mode: 0o755 },
    { kind: 'dir', path: 'sys', mode: 0o755 },
  ];
  return { archive: writeCpio(entries, input.epoch), modules: modules.map(moduleName) };
}

/**
 * Whether the kernel reads a bootconfig appended to the initrd (CONFIG_BOOT_CONFIG=y in /boot/config);
 * a kernel without a config (the minimal test kernels) is taken to.
 */
export function kernelHasBootconfig(kernelConfig: string | undefined): boolean {
  return kernelConfig === undefined || /^CONFIG_BOOT_CONFIG=y$/m.test(kernelConfig);
}
