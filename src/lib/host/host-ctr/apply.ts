// The `host-containers` restart command (host-api.md §14): from the rendered
// /etc/host-containers/host-containers.toml, for each selected container, its directory with the
// decoded user data, its environment file for host-containers@<name>.service, and the unit enabled
// and started, or stopped and disabled.
import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'smol-toml';
import { BrlError, ExitCode } from '../../core/errors.ts';
import { writeFileAtomic } from '../../core/fs.ts';

const run = promisify(execFile);

export interface HostContainerConfig {
  source?: string;
  enabled: boolean;
  superpowered: boolean;
  /** Base64, as the setting holds it. */
  userData?: string;
}

export const hostContainersToml = '/etc/host-containers/host-containers.toml';

export function parseHostContainers(text: string, path: string): Map<string, HostContainerConfig> {
  let document: Record<string, unknown>;
  try {
    document = parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new BrlError(`${path} is not TOML: ${(error as Error).message.split('\n')[0]}`, { exitCode: ExitCode.badInput, code: 'HOST_CONTAINERS_TOML' });
  }
  const containers = new Map<string, HostContainerConfig>();
  const table = (document['host-containers'] ?? {}) as Record<string, Record<string, unknown>>;
  for (const [name, entry] of Object.entries(table)) {
    containers.set(name, {
      ...(typeof entry.source === 'string' && entry.source !== '' ? { source: entry.source } : {}),
      enabled: entry.enabled === true,
      superpowered: entry.superpowered === true,
      ...(typeof entry['user-data'] === 'string' ? { userData: entry['user-data'] } : {}),
    });
  }
  return containers;
}

/** Containers a change of `changedSettings` concerns: the ones named under settings.host-containers.<name>, else all. */
export function selectContainers(all: readonly string[], changedSettings: string): string[] {
  const keys = changedSettings.split(/\s+/).filter((key) => key !== '');
  const named = new Set<string>();
  for (const key of keys) {
    const match = /^settings\.host-containers\.([A-Za-z0-9-]+)\./.exec(key);
    if (match === null) return [...all];
    named.add(match[1] as string);
  }
  return keys.length === 0 ? [...all] : all.filter((name) => named.has(name));
}

export interface ApplyHostContainersOptions {
  root: string;
  changedSettings: string;
  /** Runs `systemctl ARGS…` (a host's systemctl by default). */
  systemctl?: (args: string[]) => Promise<void>;
  /** Runs `host-ctr clean-up --container-id NAME` (the host program by default). */
  cleanUp?: (name: string) => Promise<void>;
}

export interface AppliedContainer {
  name: string;
  action: 'enabled' | 'disabled';
}

export async function applyHostContainers(options: ApplyHostContainersOptions): Promise<AppliedContainer[]> {
  const systemctl = options.systemctl ?? (async (args: string[]) => {
    await run('systemctl', args);
  });
  const cleanUp = options.cleanUp ?? (async (name: string) => {
    await run('host-ctr', ['clean-up', `--container-id=${name}`]);
  });
  const path = join(options.root, hostContainersToml);
  const containers = parseHostContainers(await readFile(path, 'utf8'), path);
  const applied: AppliedContainer[] = [];
  const failures: string[] = [];
  const hostContainerdActive = await systemctl(['is-active', '--quiet', 'host-containerd.service']).then(() => true, () => false);
  for (const name of selectContainers([...containers.keys()], options.changedSettings)) {
    const container = containers.get(name) as HostContainerConfig;
    const unit = `host-containers@${name}.service`;
    try {
      if (container.source === undefined) throw new Error(`host-containers.${name}.source is not set`);
      const dir = join(options.root, 'local/host-containers', name);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      if (container.userData !== undefined) await writeFileAtomic(join(dir, 'user-data'), Buffer.from(container.userData, 'base64'), { mode: 0o600 });
      await writeFileAtomic(join(options.root, 'etc/host-containers', `${name}.env`), `CTR_SUPERPOWERED=${container.superpowered}\nCTR_SOURCE=${container.source}\n`);
      // A changed source or superpowers take effect on a fresh container.
      if (hostContainerdActive) {
        await systemctl(['stop', unit]);
        await cleanUp(name);
      }
      await systemctl([container.enabled ? 'enable' : 'disable', '--now', '--no-block', unit]);
      applied.push({ name, action: container.enabled ? 'enabled' : 'disabled' });
    } catch (error) {
      failures.push(`${name}: ${(error as Error).message}`);
    }
  }
  if (failures.length > 0) {
    throw new BrlError(`host containers not applied: ${failures.join('; ')}`, { exitCode: ExitCode.failure, code: 'HOST_CONTAINERS_FAILED' });
  }
  return applied;
}
