// Fixed host paths, all resolved under a root (`/` on a host, any directory in tests and dev roots).
import { isAbsolute, join, relative, resolve } from 'node:path';

/** host-containerd's socket (upstream's path), where host-ctr runs host containers and /exec runs commands in them. */
export const HOST_CONTAINERD_SOCKET = '/run/host-containerd/containerd.sock';

export interface HostPaths {
  root: string;
  datastoreBase: string;
  socket: string;
  osRelease: string[];
  defaults: string;
  templatesDir: string;
  updateStatus: string;
  updateConfig: string;
  earlyBootMarker: string;
  migrationsDir: string;
  metadataDir: string;
  /** User data sources read by early-boot-config, in provider order. */
  localUserData: { name: string; path: string }[];
  /** brl: user data a VM was given as QEMU fw_cfg file `opt/org.brl/user-data` (`brl vm run --user-data`). */
  fwCfgUserData: string;
}

export function hostPaths(root: string): HostPaths {
  const at = (path: string): string => join(resolve(root), path);
  return {
    root: resolve(root),
    datastoreBase: at('var/lib/bottlerocket/datastore'),
    socket: at('run/api.sock'),
    osRelease: [at('etc/os-release'), at('usr/lib/os-release')],
    defaults: at('etc/storewolf/defaults.toml'),
    templatesDir: at('usr/share/templates'),
    updateStatus: at('run/cache/thar-be-updates/status.json'),
    updateConfig: at('etc/thar-be-updates.toml'),
    earlyBootMarker: at('var/lib/bottlerocket/early-boot-config.ran'),
    migrationsDir: at('var/lib/bottlerocket-migrations'),
    metadataDir: at('var/cache/bottlerocket-metadata'),
    fwCfgUserData: at('sys/firmware/qemu_fw_cfg/by_name/opt/org.brl/user-data/raw'),
    localUserData: [
      { name: '10-local-defaults', path: at('local/user-data-defaults.toml') },
      { name: '20-local-user-data', path: at('var/lib/bottlerocket/user-data.toml') },
      { name: '99-local-overrides', path: at('local/user-data-overrides.toml') },
    ],
  };
}

export class PathEscapeError extends Error {
  override readonly name = 'PathEscapeError';
}

/**
 * Maps an absolute host path (`/etc/motd`) into the root; refuses any path that would leave it
 * (`..` segments or relative paths climbing out).
 */
export function underRoot(root: string, hostPath: string, what: string): string {
  if (hostPath.length === 0) throw new PathEscapeError(`${what} is empty`);
  const mapped = resolve(root, `.${isAbsolute(hostPath) ? '' : '/'}${hostPath}`);
  const inside = relative(resolve(root), mapped);
  if (inside === '' || inside.startsWith('..') || isAbsolute(inside) || hostPath.split('/').includes('..')) {
    throw new PathEscapeError(`${what} '${hostPath}' escapes the root ${resolve(root)}`);
  }
  return mapped;
}
