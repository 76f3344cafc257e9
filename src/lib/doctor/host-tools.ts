// The host programs brl runs, the Debian packages that provide them, and how to find them.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface HostTool {
  command: string;
  debianPackage: string;
  /** What brl uses it for, shown by `brl doctor`. */
  purpose: string;
  /** Optional tools are test oracles; brl works without them. */
  optional: boolean;
}

export const hostTools: readonly HostTool[] = [
  { command: 'rpmbuild', debianPackage: 'rpm', purpose: 'builds packages from specs', optional: false },
  { command: 'rpm', debianPackage: 'rpm', purpose: 'queries and installs RPMs into staging roots', optional: false },
  { command: 'bwrap', debianPackage: 'bubblewrap', purpose: 'network-less build sandbox', optional: false },
  { command: 'gcc', debianPackage: 'gcc', purpose: 'compiles C sources in package builds', optional: false },
  { command: 'make', debianPackage: 'make', purpose: 'runs makefiles in package builds', optional: false },
  { command: 'mkfs.ext4', debianPackage: 'e2fsprogs', purpose: 'creates ext4 root, boot and data filesystems', optional: false },
  { command: 'debugfs', debianPackage: 'e2fsprogs', purpose: 'sets SELinux labels on ext4 images', optional: false },
  { command: 'resize2fs', debianPackage: 'e2fsprogs', purpose: 'shrinks the root filesystem to its minimum', optional: false },
  { command: 'mkfs.erofs', debianPackage: 'erofs-utils', purpose: 'creates erofs root filesystems', optional: false },
  { command: 'lz4', debianPackage: 'lz4', purpose: 'compresses update and disk images', optional: false },
  { command: 'qemu-img', debianPackage: 'qemu-utils', purpose: 'converts disk images to qcow2 and vmdk', optional: false },
  { command: 'veritysetup', debianPackage: 'cryptsetup-bin', purpose: 'test oracle for dm-verity', optional: true },
  { command: 'sgdisk', debianPackage: 'gdisk', purpose: 'test oracle for GPT', optional: true },
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

export interface ToolStatus extends HostTool {
  path: string | undefined;
}

export function checkHostTools(tools: readonly HostTool[] = hostTools): ToolStatus[] {
  return tools.map((tool) => ({ ...tool, path: findOnPath(tool.command) }));
}

/** The one apt-get command line that installs the given tools' packages. */
export function installCommand(tools: readonly HostTool[], asRoot: boolean): string {
  const packages = [...new Set(tools.map((tool) => tool.debianPackage))].sort();
  const sudo = asRoot ? '' : 'sudo ';
  return `${sudo}apt-get update && ${sudo}apt-get install -y ${packages.join(' ')}`;
}
