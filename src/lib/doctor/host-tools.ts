// The host programs and files brl uses, the Debian packages that provide them, and how to find them.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * What a tool is needed for: `build` (fetching sources, building packages and images — brl fails
 * without it), `test` (oracles the test suite checks brl against) or `vm` (booting images).
 */
export type HostToolUse = 'build' | 'test' | 'vm';

export interface HostTool {
  /** The command brl runs (found on PATH), or a short name for a file it reads. */
  command: string;
  /** An absolute path probed instead of PATH: headers, static libraries and firmware are files, not commands. */
  file?: string;
  debianPackage: string;
  /** What brl uses it for, shown by `brl doctor`. */
  purpose: string;
  use: HostToolUse;
}

export const hostTools: readonly HostTool[] = [
  { command: 'rpmbuild', debianPackage: 'rpm', purpose: 'builds packages from specs', use: 'build' },
  { command: 'rpm', debianPackage: 'rpm', purpose: 'queries and installs RPMs into staging roots', use: 'build' },
  { command: 'bwrap', debianPackage: 'bubblewrap', purpose: 'network-less build sandbox', use: 'build' },
  { command: 'unshare', debianPackage: 'util-linux', purpose: 'private mount namespace of a package build started by root', use: 'build' },
  { command: 'mount', debianPackage: 'mount', purpose: 'shows a package build its directories at neutral paths', use: 'build' },
  { command: 'setpriv', debianPackage: 'util-linux', purpose: 'drops root before a package build; runs brl without root\'s privileges in permission tests', use: 'build' },
  { command: 'gcc', debianPackage: 'gcc', purpose: 'compiles C sources in package builds', use: 'build' },
  // gcc without recommends has no libc headers: `stdio.h` is the first thing a C build misses.
  { command: 'libc headers', file: '/usr/include/stdio.h', debianPackage: 'libc6-dev', purpose: 'C headers and libraries for package builds', use: 'build' },
  { command: 'make', debianPackage: 'make', purpose: 'runs makefiles in package builds', use: 'build' },
  { command: 'git', debianPackage: 'git', purpose: 'build id and SOURCE_DATE_EPOCH from the checkout', use: 'build' },
  { command: 'apt-get', debianPackage: 'apt', purpose: 'fetches deb: sources through the machine\'s apt sources', use: 'build' },
  { command: 'dpkg-deb', debianPackage: 'dpkg', purpose: 'unpacks Debian packages in package and host-container image builds', use: 'build' },
  { command: 'xz', debianPackage: 'xz-utils', purpose: 'unpacks xz-compressed sources and kernel modules', use: 'build' },
  { command: 'depmod', debianPackage: 'kmod', purpose: 'kernel module index of the root filesystem', use: 'build' },
  // GRUB is built from Debian's source package (packages-specs/grub): its configure and make need these.
  // gcc-12-multilib, not gcc-multilib: that one only adds /usr/include/asm and conflicts with every cross compiler.
  { command: 'gcc -m32 runtime', file: '/usr/lib/gcc/x86_64-linux-gnu/12/32/libgcc.a', debianPackage: 'gcc-12-multilib', purpose: 'builds GRUB\'s i386-pc (BIOS) image', use: 'build' },
  // aarch64 packages are cross-built on x86_64 (brl build package --arch aarch64).
  { command: 'aarch64-linux-gnu-gcc', debianPackage: 'gcc-aarch64-linux-gnu', purpose: 'compiles C sources of aarch64 package builds', use: 'build' },
  { command: 'aarch64-linux-gnu-strip', debianPackage: 'binutils-aarch64-linux-gnu', purpose: 'strips aarch64 binaries in package builds (rpm\'s brp-strip)', use: 'build' },
  { command: 'qemu-aarch64-static', debianPackage: 'qemu-user-static', purpose: 'runs aarch64 programs a cross build needs at build time (settings-defaults runs node)', use: 'build' },
  { command: 'aarch64 libc headers', file: '/usr/aarch64-linux-gnu/include/stdio.h', debianPackage: 'libc6-dev-arm64-cross', purpose: 'C headers and libraries for aarch64 package builds', use: 'build' },
  { command: 'bison', debianPackage: 'bison', purpose: 'builds GRUB', use: 'build' },
  { command: 'flex', debianPackage: 'flex', purpose: 'builds GRUB', use: 'build' },
  { command: 'autoconf', debianPackage: 'autoconf', purpose: 'regenerates GRUB\'s build files with the gptprio module', use: 'build' },
  { command: 'aclocal', debianPackage: 'automake', purpose: 'regenerates GRUB\'s build files with the gptprio module', use: 'build' },
  { command: 'autopoint', debianPackage: 'autopoint', purpose: 'regenerates GRUB\'s build files', use: 'build' },
  { command: 'msgfmt', debianPackage: 'gettext', purpose: 'builds GRUB\'s translations', use: 'build' },
  { command: 'patch', debianPackage: 'patch', purpose: 'applies Debian\'s GRUB patches', use: 'build' },
  { command: 'python3', debianPackage: 'python3', purpose: 'generates GRUB\'s module lists', use: 'build' },
  { command: 'mkfs.ext4', debianPackage: 'e2fsprogs', purpose: 'creates ext4 root, boot and data filesystems', use: 'build' },
  { command: 'debugfs', debianPackage: 'e2fsprogs', purpose: 'sets SELinux labels on ext4 images', use: 'build' },
  { command: 'resize2fs', debianPackage: 'e2fsprogs', purpose: 'shrinks the root filesystem to its minimum', use: 'build' },
  { command: 'dumpe2fs', debianPackage: 'e2fsprogs', purpose: 'reads the size of a shrunk filesystem', use: 'build' },
  { command: 'filefrag', debianPackage: 'e2fsprogs', purpose: 'finds the data extents of sparse images', use: 'build' },
  { command: 'mkfs.erofs', debianPackage: 'erofs-utils', purpose: 'creates erofs root filesystems', use: 'build' },
  { command: 'lz4', debianPackage: 'lz4', purpose: 'compresses update and disk images', use: 'build' },
  { command: 'qemu-img', debianPackage: 'qemu-utils', purpose: 'converts disk images to qcow2 and vmdk', use: 'build' },
  { command: 'mkfs.fat', debianPackage: 'dosfstools', purpose: 'creates the EFI system partition', use: 'build' },
  { command: 'secilc', debianPackage: 'secilc', purpose: 'compiles the SELinux policy (packages-specs/selinux-policy)', use: 'build' },
  { command: 'mcopy', debianPackage: 'mtools', purpose: 'copies the boot loader into the EFI system partition (with mmd)', use: 'build' },
  { command: 'veritysetup', debianPackage: 'cryptsetup-bin', purpose: 'test oracle for dm-verity', use: 'test' },
  { command: 'sgdisk', debianPackage: 'gdisk', purpose: 'test oracle for GPT', use: 'test' },
  { command: 'fsck.ext4', debianPackage: 'e2fsprogs', purpose: 'test oracle for ext4 filesystems', use: 'test' },
  { command: 'openssl', debianPackage: 'openssl', purpose: 'makes test certificates and checks CA bundles', use: 'test' },
  { command: 'strip', debianPackage: 'binutils', purpose: 'makes stripped binaries for hardening tests', use: 'test' },
  { command: 'cpio', debianPackage: 'cpio', purpose: 'test oracle for initramfs archives', use: 'test' },
  { command: 'sbverify', debianPackage: 'sbsigntool', purpose: 'test oracle: sbverify checks the Authenticode signatures brl writes on EFI binaries, sbsign\'s output is compared with brl\'s', use: 'test' },
  { command: 'sesearch', debianPackage: 'setools', purpose: 'test oracle: queries the compiled SELinux policy', use: 'test' },
  { command: 'gpgv', debianPackage: 'gpgv', purpose: 'test oracle: checks the OpenPGP signatures brl writes for GRUB', use: 'test' },
  { command: 'gpg', debianPackage: 'gpg', purpose: 'test oracle: imports the GRUB key brl writes and checks its self-certification', use: 'test' },
  { command: 'fsck.fat', debianPackage: 'dosfstools', purpose: 'test oracle for the EFI system partition', use: 'test' },
  { command: 'docker-registry', debianPackage: 'docker-registry', purpose: 'test: a real OCI registry on 127.0.0.1 that host-container images are pushed to', use: 'test' },
  { command: 'skopeo', debianPackage: 'skopeo', purpose: 'test oracle: pulls pushed host-container images back by digest', use: 'test' },
  { command: 'umoci', debianPackage: 'umoci', purpose: 'test oracle: reads and unpacks OCI image layouts', use: 'test' },
  { command: 'containerd', debianPackage: 'containerd', purpose: 'test: the containerd (1.6, as the image ships) that host-ctr drives over gRPC, on a temp socket and root', use: 'test' },
  { command: 'containerd-shim-runc-v2', debianPackage: 'containerd', purpose: 'test: runs host-ctr\'s containers under the test\'s containerd', use: 'test' },
  { command: 'runc', debianPackage: 'runc', purpose: 'test: the OCI runtime under the test\'s containerd', use: 'test' },
  { command: 'qemu-io', debianPackage: 'qemu-utils', purpose: 'test: damages a stopped VM\'s disk to prove the boot falls back', use: 'vm' },
  { command: 'journalctl', debianPackage: 'systemd', purpose: 'test oracle: reads a booted guest\'s journal from its data disk', use: 'vm' },
  { command: 'qemu-system-x86_64', debianPackage: 'qemu-system-x86', purpose: 'boots x86_64 images (brl vm run)', use: 'vm' },
  { command: 'OVMF firmware', file: '/usr/share/OVMF/OVMF_CODE_4M.fd', debianPackage: 'ovmf', purpose: 'UEFI firmware for x86_64 VMs', use: 'vm' },
  { command: 'SeaBIOS firmware', file: '/usr/share/seabios/bios-256k.bin', debianPackage: 'seabios', purpose: 'BIOS firmware for x86_64 VMs', use: 'vm' },
  { command: 'qemu-system-aarch64', debianPackage: 'qemu-system-arm', purpose: 'boots aarch64 images (brl vm run --arch aarch64, -M virt)', use: 'vm' },
  { command: 'AAVMF firmware', file: '/usr/share/AAVMF/AAVMF_CODE.fd', debianPackage: 'qemu-efi-aarch64', purpose: 'UEFI firmware for aarch64 VMs', use: 'vm' },
];

// Non-root shells often lack the sbin directories where mkfs and friends live.
const extraSearchDirs = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** Absolute path of `command` on PATH (plus the sbin directories), or undefined. */
export function findOnPath(command: string, pathEnv: string = process.env.PATH ?? ''): string | undefined {
  const dirs = [...pathEnv.split(delimiter).filter(Boolean), ...extraSearchDirs];
  for (const dir of dirs) {
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

function findFile(path: string): string | undefined {
  try {
    accessSync(path, constants.R_OK);
    return path;
  } catch {
    return undefined;
  }
}

export interface ToolStatus extends HostTool {
  path: string | undefined;
}

export function checkHostTools(tools: readonly HostTool[] = hostTools): ToolStatus[] {
  return tools.map((tool) => ({ ...tool, path: tool.file === undefined ? findOnPath(tool.command) : findFile(tool.file) }));
}

/** The one apt-get command line that installs the given tools' packages. */
export function installCommand(tools: readonly HostTool[], asRoot: boolean): string {
  const packages = [...new Set(tools.map((tool) => tool.debianPackage))].sort();
  const sudo = asRoot ? '' : 'sudo ';
  return `${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ${packages.join(' ')}`;
}
