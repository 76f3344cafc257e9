// The OCI runtime spec of a host container, written by us as Bottlerocket's host-ctr composes it:
// every host container shares the host's network (and its hosts and resolv.conf) and gets its
// own directory, the API socket and the OS release; a superpowered one also gets the host's PID
// namespace, the host root at /.bottlerocket/rootfs, every capability and every device.
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { ImageConfig } from '../../oci/models.ts';

/** The capabilities containerd gives a container by default (its oci.populateDefaultUnixSpec). */
const defaultCapabilities = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** Linux's capabilities 0–40 (6.1), in bit order. */
const allCapabilities = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** Paths runc hides or makes read-only in an unprivileged container (containerd's defaults). */
const maskedPaths = ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'];
const readonlyPaths = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** The capabilities this process may pass on (its bounding set), which is what "all" can mean for runc. */
function boundingCapabilities(): string[] {
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((text) => text.startsWith('CapBnd:'));
  const mask = BigInt(`0x${line?.split(':')[1]?.trim() ?? '0'}`);
  return allCapabilities.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

export interface HostPaths {
  /** The host's root as host-ctr sees it (`/` on a host). */
  root: string;
  /** `/local/host-containers/<name>`: the container's persistent directory, with its user data. */
  containerDir: string;
}

export interface HostContainerSpecOptions {
  name: string;
  superpowered: boolean;
  image: ImageConfig;
  host: HostPaths;
}

interface SpecMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

/** SELinux process labels of host containers: unconfined when superpowered, confined otherwise. */
const superpoweredLabel = 'system_u:system_r:super_t:s0';
const hostContainerLabel = 'system_u:system_r:control_t:s0';

function bind(source: string, destination: string, readOnly: boolean): SpecMount {
  return { destination, type: 'bind', source, options: ['rbind', 'rprivate', readOnly ? 'ro' : 'rw'] };
}

/** `User` of an image config: numeric `uid[:gid]` only (a name would need the image's /etc/passwd). */
function imageUser(user: string | undefined): { uid: number; gid: number } {
  const [uid, gid] = (user === undefined || user === '' ? '0:0' : user).split(':');
  const number = (text: string | undefined): number => (text !== undefined && /^\d+$/.test(text) ? Number(text) : 0);
  return { uid: number(uid), gid: number(gid ?? uid) };
}

export function hostContainerSpec(options: HostContainerSpecOptions): Record<string, unknown> {
  const { name, superpowered, image, host } = options;
  const hostPath = (path: string): string => join(host.root, path);
  const args = [...(image.config.Entrypoint ?? []), ...(image.config.Cmd ?? [])];
  const mounts: SpecMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', superpowered ? 'rw' : 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', superpowered ? 'rw' : 'ro'] },
    bind(host.containerDir, `/.bottlerocket/host-containers/${name}`, false),
    bind(host.containerDir, '/.bottlerocket/host-containers/current', false),
  ];
  // The host's files a host container sees, where this host has them.
  const optional: [string, string, boolean][] = [
    ['/run/api.sock', '/run/api.sock', false],
    ['/etc/os-release', '/etc/bottlerocket-release', true],
    ['/etc/hosts', '/etc/hosts', true],
    ['/etc/resolv.conf', '/etc/resolv.conf', true],
    ['/var/log/support', '/.bottlerocket/support', false],
  ];
  if (superpowered) {
    optional.push(['/lib/modules', '/lib/modules', true], ['/sys/kernel/debug', '/sys/kernel/debug', false]);
  }
  for (const [source, destination, readOnly] of optional) {
    if (existsSync(hostPath(source))) mounts.push(bind(hostPath(source), destination, readOnly));
  }
  // /dev first: the mounts below it go on top. A superpowered container gets all of the host's
  // devices and the host root with everything mounted below it.
  if (superpowered) {
    mounts.unshift(bind('/dev', '/dev', false));
    mounts.push({ destination: '/.bottlerocket/rootfs', type: 'bind', source: host.root, options: ['rbind', 'rslave', 'rw'] });
  } else {
    mounts.unshift({ destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] });
  }
  const capabilities = superpowered ? boundingCapabilities() : defaultCapabilities;
  const namespaces = (superpowered ? ['ipc', 'uts', 'mount'] : ['pid', 'ipc', 'uts', 'mount']).map((type) => ({ type }));
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: imageUser(image.config.User),
      args: args.length > 0 ? args : ['/bin/sh'],
      env: image.config.Env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      cwd: image.config.WorkingDir === undefined || image.config.WorkingDir === '' ? '/' : image.config.WorkingDir,
      capabilities: { bounding: capabilities, effective: capabilities, permitted: capabilities },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: !superpowered,
      // The policy's domains (packages-specs/selinux-policy); runc refuses a label where SELinux is off.
      ...(existsSync(hostPath('/sys/fs/selinux/enforce')) ? { selinuxLabel: superpowered ? superpoweredLabel : hostContainerLabel } : {}),
    },
    root: { path: 'rootfs', readonly: false },
    hostname: hostname(),
    mounts,
    linux: {
      namespaces,
      cgroupsPath: `/host-containers/${name}`,
      resources: { devices: [{ allow: superpowered, access: 'rwm' }] },
      ...(superpowered ? {} : { maskedPaths, readonlyPaths }),
    },
  };
}
