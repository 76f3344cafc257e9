// The `/exec` launcher for host containers: the command runs as an extra process in the container's
// task on host-containerd (Tasks.Exec, as `ctr task exec` does upstream), its stdio through FIFOs
// that containerd's shim opens.
import { mkdtemp, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { within } from '../../core/concurrency.ts';
import { randomAlnum } from '../datastore/layout.ts';
import { makeFifos, openFifo } from '../fifo.ts';
import { HOST_CONTAINERD_SOCKET } from '../paths.ts';
import { ContainerdClient, GrpcStatus, isGrpcStatus, type AnyMessage } from '../../containerd/client.ts';
import { ExecTargetError, type ExecLauncher, type ExecProcess } from './launcher.ts';
import type { InitializeRequest } from './messages.ts';

const processSpecType = 'types.containerd.io/opencontainers/runtime-spec/1/Process';
/** How long output may stay open after the command exited (a background child holding it) before the shim is told to let go. */
const OUTPUT_GRACE_MS = 2000;

/** `apiexec-<16 alnum>`, the exec IDs upstream's apiserver gives its `ctr task exec`. */
export function execId(): string {
  return `apiexec-${randomAlnum(16)}`;
}

interface OciProcess {
  args?: string[];
  env?: string[];
  terminal?: boolean;
  consoleSize?: { height: number; width: number };
  [key: string]: unknown;
}

/** The container's own process (user, cwd, capabilities…) running the command instead, with TERM=screen as upstream. */
export function execProcessSpec(containerSpec: { process?: OciProcess }, request: InitializeRequest): OciProcess {
  const base = containerSpec.process ?? {};
  const env = (base.env ?? []).filter((entry) => !entry.startsWith('TERM='));
  const spec: OciProcess = { ...base, args: request.command, env: [...env, 'TERM=screen'], terminal: request.tty !== null };
  delete spec.consoleSize;
  if (request.tty) spec.consoleSize = { height: request.tty.size.rows, width: request.tty.size.cols };
  return spec;
}

/** stdout and stderr as one stream that ends when both have. */
function merge(streams: Readable[]): PassThrough {
  const output = new PassThrough();
  let remaining = streams.length;
  for (const stream of streams) {
    stream.pipe(output, { end: false });
    stream.once('close', () => {
      remaining -= 1;
      if (remaining === 0) output.end();
    });
  }
  return output;
}

function ignoreNotFound(error: unknown): void {
  if (!isGrpcStatus(error, GrpcStatus.NOT_FOUND)) throw error;
}

export interface ContainerdLauncherOptions {
  /** host-containerd's socket; default upstream's. */
  socketPath?: string;
  /** The FIFOs' private directories are made under this; default the system temp dir. */
  fifoParent?: string;
  log?: (line: string) => void;
}

export class ContainerdExecLauncher implements ExecLauncher {
  readonly client: ContainerdClient;
  private readonly fifoParent: string;
  private readonly log: (line: string) => void;

  constructor(options: ContainerdLauncherOptions = {}) {
    // Upstream's `ctr task exec` runs in namespace `default`, where host-ctr keeps the host containers.
    this.client = new ContainerdClient(options.socketPath ?? HOST_CONTAINERD_SOCKET, 'default');
    this.fifoParent = options.fifoParent ?? tmpdir();
    this.log = options.log ?? (() => undefined);
  }

  async start(request: InitializeRequest): Promise<ExecProcess> {
    const containerSpec = await this.runningContainerSpec(request.target);
    const id = execId();
    const task = { container_id: request.target, exec_id: id };
    const dir = await mkdtemp(join(this.fifoParent, 'brl-exec-'));
    const names = request.tty ? ['stdin', 'stdout'] : ['stdin', 'stdout', 'stderr'];
    const paths = names.map((name) => join(dir, name));
    const fifos: Socket[] = [];
    let created = false;
    try {
      await makeFifos(paths);
      // Ours open first, as ctr's do: the shim's stdin reader must not see EOF before we are there.
      for (const [index, path] of paths.entries()) fifos.push(await openFifo(path, index === 0 ? 'write' : 'read'));
      // Merged at once: a short command's output can end before Start has answered.
      const output = merge(fifos.slice(1));
      const spec: AnyMessage = { type_url: processSpecType, value: Buffer.from(JSON.stringify(execProcessSpec(containerSpec, request))) };
      await this.client.call('tasks', 'Exec', { ...task, stdin: paths[0], stdout: paths[1], stderr: paths[2] ?? '', terminal: request.tty !== null, spec });
      created = true;
      // Waiting before starting: an exit right after the start cannot be missed.
      const waited = this.client.call<{ exit_status: number }>('tasks', 'Wait', task);
      waited.catch(() => undefined);
      await this.client.call('tasks', 'Start', task);
      return this.running(request, task, dir, fifos, output, waited);
    } catch (error) {
      for (const fifo of fifos) fifo.destroy();
      if (created) await this.client.call('tasks', 'DeleteProcess', task).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** The container's runtime spec, when `name` is a host container whose task is running. */
  private async runningContainerSpec(name: string): Promise<{ process?: OciProcess }> {
    const container = await this.client.call<{ container: { spec: AnyMessage | null } }>('containers', 'Get', { id: name }).catch((error: unknown) => {
      ignoreNotFound(error);
      throw new ExecTargetError(`no host container named '${name}'`);
    });
    const task = await this.client.call<{ process: { status: string } }>('tasks', 'Get', { container_id: name }).catch((error: unknown) => {
      ignoreNotFound(error);
      return undefined;
    });
    if (task?.process.status !== 'RUNNING') {
      throw new ExecTargetError(`host container '${name}' is not running (${task === undefined ? 'no task' : task.process.status.toLowerCase()})`);
    }
    if (container.container.spec === null) throw new ExecTargetError(`host container '${name}' has no runtime spec`);
    return JSON.parse(container.container.spec.value.toString('utf8')) as { process?: OciProcess };
  }

  private running(request: InitializeRequest, task: { container_id: string; exec_id: string }, dir: string, fifos: Socket[], output: PassThrough, waited: Promise<{ exit_status: number }>): ExecProcess {
    const stdinFifo = fifos[0] as Socket;
    const outputEnded = new Promise<void>((resolve) => output.once('end', resolve).once('close', resolve));
    const stdin = new Writable({
      write: (chunk: Buffer, _encoding, done) => void stdinFifo.write(chunk, done),
      final: (done) => {
        // A terminal has no EOF to pass on: the shim hangs its console up when its stdin ends,
        // so the FIFO stays open until the command is gone.
        if (request.tty !== null) return done();
        // With pipes, the command's stdin is closed by CloseIO once every byte is in the FIFO.
        // (A command that has exited and been deleted already needs none.)
        stdinFifo.end(() => void this.client.call('tasks', 'CloseIO', { ...task, stdin: true }).catch((error: Error) => {
          if (!isGrpcStatus(error, GrpcStatus.NOT_FOUND)) this.log(`exec ${task.exec_id}: close stdin: ${error.message}`);
        }));
        done();
      },
    });
    stdinFifo.once('error', (error) => stdin.destroy(error));
    // containerd reports a signal's death as 128 + n already.
    const exit = waited.then((result) => result.exit_status);
    void exit
      .catch((error: Error) => this.log(`exec ${task.exec_id} in ${task.container_id}: wait: ${error.message}`))
      .then(() => within(outputEnded, OUTPUT_GRACE_MS))
      .then(async () => {
        await this.client.call('tasks', 'DeleteProcess', task).catch(() => undefined);
        for (const fifo of fifos) fifo.destroy();
        await rm(dir, { recursive: true, force: true });
      });
    return {
      stdin,
      output,
      exit,
      resize: async (size) => {
        if (request.tty === null) return;
        await this.client.call('tasks', 'ResizePty', { ...task, width: size.cols, height: size.rows });
      },
      kill: async () => {
        await this.client.call('tasks', 'Kill', { ...task, signal: 9, all: false }).catch(ignoreNotFound);
      },
    };
  }

  close(): void {
    this.client.close();
  }
}
