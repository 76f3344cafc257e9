// Runs QEMU until it exits, serves the API bridge while it runs, and leaves nothing behind: a
// timeout, Ctrl-C or SIGTERM stops QEMU, and sockets and the pid file go with it.
import { spawn } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { startHostBridge, type HostBridge } from '../host/api-bridge/bridge.ts';

/** What the supervisor needs; written as JSON for a detached supervisor. */
export interface VmSpec {
  qemu: string;
  args: string[];
  stateDir: string;
  consoleLog: string;
  /** QEMU's serial console is the terminal. */
  onTerminal: boolean;
  apiSocket?: string;
  bridgeChannel?: string;
  timeoutSeconds?: number;
}

export function lastLines(text: string, count: number): string {
  return text.replace(/\r/g, '').trimEnd().split('\n').slice(-count).join('\n');
}

/** Serves the bridge channel that QEMU connects its serial port to, and the host API socket on it. */
async function serveBridge(channelPath: string, apiSocket: string): Promise<{ close(): Promise<void> }> {
  await rm(channelPath, { force: true });
  let bridge: HostBridge | undefined;
  let channel: Socket | undefined;
  const server = createServer((socket) => {
    channel?.destroy();
    channel = socket;
    void bridge?.close();
    void startHostBridge(apiSocket, socket).then((started) => {
      bridge = started;
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(channelPath, () => resolve());
  });
  return {
    close: async () => {
      channel?.destroy();
      await bridge?.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(channelPath, { force: true });
      await rm(apiSocket, { force: true });
    },
  };
}

export interface VmEnd {
  /** QEMU's exit code (128 + signal number when killed). */
  exitCode: number;
  /** brl stopped the VM because --timeout passed. */
  timedOut: boolean;
}

/** Runs the VM to its end. */
export async function superviseVm(spec: VmSpec): Promise<VmEnd> {
  const pidFile = join(spec.stateDir, 'supervisor.pid');
  await writeFile(pidFile, String(process.pid));
  const bridge = spec.bridgeChannel !== undefined && spec.apiSocket !== undefined ? await serveBridge(spec.bridgeChannel, spec.apiSocket) : undefined;
  const qemu = spawn(spec.qemu, spec.args, { stdio: spec.onTerminal ? 'inherit' : ['ignore', 'inherit', 'inherit'] });
  // On SIGTERM QEMU stops the guest and writes back its qcow2 metadata; a SIGKILL before that ends
  // loses the overlay's newest clusters (a --persist disk, a journal read after the run), and on a
  // loaded host it can take more than a few seconds.
  const stop = () => {
    qemu.kill('SIGTERM');
    setTimeout(() => qemu.kill('SIGKILL'), 30_000).unref();
  };
  let timedOut = false;
  const timer = spec.timeoutSeconds === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    stop();
  }, spec.timeoutSeconds * 1000);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const exitCode = await new Promise<number>((resolve) => {
    qemu.once('error', () => resolve(127));
    qemu.once('exit', (code, signal) => resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15)));
  });
  if (timer) clearTimeout(timer);
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  await bridge?.close();
  await rm(pidFile, { force: true });
  return { exitCode, timedOut };
}
