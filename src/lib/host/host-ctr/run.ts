// host-ctr's supervisor of one host container: pull the image, create the container and its task
// on host-containerd, and keep it running — restart after an exit or a failure with a growing
// delay (reset after a run that lasted), never a tight loop — until stopped. Each state change is
// written to a status file (and the journal) that says what failed, in words; the task's stdout
// and stderr come through FIFOs to host-ctr's own stderr, a line at a time.
import { mkdir } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { within } from '../../core/concurrency.ts';
import { writeJsonAtomic } from '../../core/fs.ts';
import { GrpcStatus, isGrpcStatus, type ContainerdClient, type Mount } from '../../containerd/client.ts';
import { pullImage, snapshotter } from '../../containerd/pull.ts';
import type { RegistryHosts } from '../../containerd/registry-hosts.ts';
import { makeFifos, openFifo } from '../fifo.ts';
import { forwardLines, type LineSink } from './output.ts';
import { hostContainerSpec, type HostPaths } from './runtime-spec.ts';

export type HostContainerState = 'pulling' | 'starting' | 'running' | 'exited' | 'failed' | 'stopped';

export interface HostContainerStatus {
  name: string;
  source: string;
  state: HostContainerState;
  /** What happened, e.g. the exit status or why the pull failed. */
  message: string;
  /** Starts of the task so far (the first included). */
  starts: number;
  pid?: number;
  /** The next attempt, while waiting after an exit or a failure. */
  retryInSeconds?: number;
  at: string;
}

export interface RunOptions {
  client: ContainerdClient;
  name: string;
  source: string;
  superpowered: boolean;
  host: HostPaths;
  /** Mirrors and credentials for the pull (host-ctr.toml); none: the registry itself, anonymously. */
  registryHosts?: RegistryHosts;
  /** The status file (`<name>.status.json`) and the task's FIFOs (`<name>.stdout`, `<name>.stderr`) go here. */
  stateDir: string;
  /** First and longest wait before a retry, in ms (doubling in between). */
  backoffMs?: { first: number; max: number };
  /** A run at least this long resets the wait to `first`. */
  healthyAfterMs?: number;
  signal: AbortSignal;
  log?: (line: string) => void;
  /**
   * The task's output, a line at a time: `<name>: <line>` from stdout, `<name> (stderr): <line>`
   * from stderr. A promise returned holds reading until it settles (the container blocks once the
   * pipes are full rather than host-ctr's memory growing). Default: `log`.
   */
  output?: LineSink;
  onStatus?: (status: HostContainerStatus) => void;
}

const specType = 'types.containerd.io/opencontainers/runtime-spec/1/Spec';
const runtimeName = 'io.containerd.runc.v2';
/** How long the output may take to end after the task was deleted (the shim has closed its ends by then). */
const OUTPUT_DRAIN_MS = 5_000;

function ignoreNotFound(error: unknown): void {
  if (!isGrpcStatus(error, GrpcStatus.NOT_FOUND)) throw error;
}

/** Kills and deletes the container's task if it has one (one left running when containerd restarted, say). */
async function removeTask(client: ContainerdClient, name: string): Promise<void> {
  // Best effort: a task that already exited answers Kill with an error, and Delete decides.
  await client.call('tasks', 'Kill', { container_id: name, signal: 9, all: true }).catch(() => {});
  // A killed task needs a moment to be reaped before Delete accepts it.
  for (let attempt = 0; ; attempt++) {
    try {
      await client.call('tasks', 'Delete', { container_id: name });
      return;
    } catch (error) {
      if (isGrpcStatus(error, GrpcStatus.NOT_FOUND)) return;
      if (!isGrpcStatus(error, GrpcStatus.FAILED_PRECONDITION) || attempt >= 50) throw error;
      await sleep(100);
    }
  }
}

/** Removes the container's task, container record and root snapshot, whatever state they are in. */
export async function cleanUpContainer(client: ContainerdClient, name: string): Promise<void> {
  await removeTask(client, name);
  await client.call('containers', 'Delete', { id: name }).catch(ignoreNotFound);
  await client.call('snapshots', 'Remove', { snapshotter, key: name }).catch(ignoreNotFound);
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const details = (error as { details?: unknown }).details;
    return typeof details === 'string' && details !== '' ? details : error.message;
  }
  return String(error);
}

/**
 * The container record and its root snapshot, made anew on the first start of a run and when the
 * image or the spec changed; a restart of the same container keeps them. (Removing a snapshot and
 * preparing another at once races containerd 1.6's overlayfs clean-up, which can delete the new
 * snapshot's directory.) Returns the root's mounts.
 */
async function containerRoot(client: ContainerdClient, name: string, imageName: string, chainId: string, spec: Buffer, fresh: boolean): Promise<Mount[]> {
  if (!fresh) {
    const existing = await client.call<{ container: { image: string; spec: { value: Buffer } | null } }>('containers', 'Get', { id: name }).catch((error: unknown) => {
      ignoreNotFound(error);
      return undefined;
    });
    if (existing?.container.image === imageName && existing.container.spec?.value.equals(spec) === true) {
      await removeTask(client, name);
      return (await client.call<{ mounts: Mount[] }>('snapshots', 'Mounts', { snapshotter, key: name })).mounts;
    }
  }
  await cleanUpContainer(client, name);
  const prepared = await client.call<{ mounts: Mount[] }>('snapshots', 'Prepare', { snapshotter, key: name, parent: chainId });
  await client.call('containers', 'Create', {
    container: {
      id: name,
      image: imageName,
      runtime: { name: runtimeName },
      spec: { type_url: specType, value: spec },
      snapshotter,
      snapshot_key: name,
    },
  });
  return prepared.mounts;
}

/**
 * The task a host-ctr that died (rather than being stopped, which stops the task) left running,
 * when its container has this image and spec and the task writes to these FIFOs: it is taken over,
 * as upstream's host-ctr attaches to a running task, rather than killed and started again.
 */
async function leftRunning(client: ContainerdClient, name: string, imageName: string, spec: Buffer, fifos: { stdout: string; stderr: string }): Promise<{ pid: number } | undefined> {
  const notFound = (error: unknown): undefined => {
    ignoreNotFound(error);
    return undefined;
  };
  const existing = await client.call<{ container: { image: string; spec: { value: Buffer } | null } }>('containers', 'Get', { id: name }).catch(notFound);
  if (existing?.container.image !== imageName || existing.container.spec?.value.equals(spec) !== true) return undefined;
  const task = await client.call<{ process: { pid: number; status: string; stdout: string; stderr: string } }>('tasks', 'Get', { container_id: name }).catch(notFound);
  if (task?.process.status !== 'RUNNING' || task.process.stdout !== fifos.stdout || task.process.stderr !== fifos.stderr) return undefined;
  return { pid: task.process.pid };
}

export async function runHostContainer(options: RunOptions): Promise<void> {
  const { client, name, source, signal } = options;
  const log = options.log ?? (() => {});
  const backoff = options.backoffMs ?? { first: 1_000, max: 60_000 };
  const healthyAfterMs = options.healthyAfterMs ?? 60_000;
  await mkdir(options.stateDir, { recursive: true });
  await mkdir(options.host.containerDir, { recursive: true, mode: 0o700 });
  const statusFile = join(options.stateDir, `${name}.status.json`);
  // Plain paths, which containerd's shim opens as FIFOs; kept from one start to the next.
  const fifos = { stdout: join(options.stateDir, `${name}.stdout`), stderr: join(options.stateDir, `${name}.stderr`) };
  const output = options.output ?? log;
  let starts = 0;
  const report = async (state: HostContainerState, message: string, extra: Partial<HostContainerStatus> = {}): Promise<void> => {
    const status: HostContainerStatus = { name, source, state, message, starts, ...extra, at: new Date().toISOString() };
    log(`host container ${name}: ${state}: ${message}`);
    await writeJsonAtomic(statusFile, status);
    options.onStatus?.(status);
  };

  let delay = backoff.first;
  while (!signal.aborted) {
    let readers: Socket[] = [];
    let forwarded: Promise<unknown> = Promise.resolve();
    try {
      await report('pulling', `pulling ${source}`);
      const image = await pullImage(client, source, { log, ...(options.registryHosts === undefined ? {} : { registryHosts: options.registryHosts }) });
      await report('starting', `image ${image.manifestDigest}`);
      const spec = Buffer.from(JSON.stringify(hostContainerSpec({ name, superpowered: options.superpowered, image: image.config, host: options.host })));
      const takenOver = starts === 0 ? await leftRunning(client, name, image.name, spec, fifos) : undefined;
      const mounts = takenOver === undefined ? await containerRoot(client, name, image.name, image.chainId, spec, starts === 0) : [];
      // Read ends open before the task is created (after containerRoot removed any older task,
      // whose shim's ends would have ended them): nothing the task writes is missed, and they end
      // when the shim closes its ends at the task's Delete. A task taken over has its output of
      // the meantime waiting in the pipes.
      await makeFifos([fifos.stdout, fifos.stderr]);
      readers = [await openFifo(fifos.stdout, 'read'), await openFifo(fifos.stderr, 'read')];
      forwarded = Promise.all([forwardLines(readers[0] as Socket, `${name}: `, output), forwardLines(readers[1] as Socket, `${name} (stderr): `, output)]);
      forwarded.catch(() => {});
      const pid = takenOver?.pid ?? (await client.call<{ pid: number }>('tasks', 'Create', { container_id: name, rootfs: mounts, stdout: fifos.stdout, stderr: fifos.stderr })).pid;
      // Waiting before starting: an exit right after the start cannot be missed.
      const exited = client.call<{ exit_status: number }>('tasks', 'Wait', { container_id: name });
      // Handled here too: when Start fails, the wait ends in an error nobody awaits.
      exited.catch(() => {});
      if (takenOver === undefined) await client.call('tasks', 'Start', { container_id: name });
      starts++;
      const startedAt = Date.now();
      await report('running', takenOver === undefined ? `pid ${pid}` : `pid ${pid}, left running by an earlier host-ctr and taken over`, { pid });
      // SIGTERM, and SIGKILL to everything in it if the container is still there 10 s later.
      let killTimer: NodeJS.Timeout | undefined;
      const stop = (): void => {
        void client.call('tasks', 'Kill', { container_id: name, signal: 15, all: false }).catch(() => {});
        killTimer = setTimeout(() => void client.call('tasks', 'Kill', { container_id: name, signal: 9, all: true }).catch(() => {}), 10_000);
      };
      if (signal.aborted) stop();
      else signal.addEventListener('abort', stop, { once: true });
      let result: { exit_status: number };
      try {
        result = await exited;
      } finally {
        signal.removeEventListener('abort', stop);
        clearTimeout(killTimer);
      }
      await client.call('tasks', 'Delete', { container_id: name }).catch(ignoreNotFound);
      // The last lines before the exit status.
      await within(forwarded, OUTPUT_DRAIN_MS);
      if (signal.aborted) break;
      if (Date.now() - startedAt >= healthyAfterMs) delay = backoff.first;
      await report('exited', `exit status ${result.exit_status}`, { retryInSeconds: delay / 1000 });
    } catch (error) {
      if (signal.aborted) break;
      await report('failed', describe(error), { retryInSeconds: delay / 1000 });
    } finally {
      // A FIFO whose writer never came (the task was not created) would never end by itself.
      for (const reader of readers) reader.destroy();
    }
    await sleep(delay, undefined, { signal }).catch(() => {});
    delay = Math.min(delay * 2, backoff.max);
  }
  await cleanUpContainer(client, name).catch((error: unknown) => log(`host container ${name}: clean-up failed: ${describe(error)}`));
  await report('stopped', 'stopped');
}
