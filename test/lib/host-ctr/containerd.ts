// Debian's containerd 1.6 (the version the image ships) for tests: its own root, state and socket
// in a temp directory, stopped and removed after the tests; or the reason this machine's kernel
// refuses to run it, so the tests that need it are skipped visibly.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ContainerdClient } from '../../../src/lib/containerd/client.ts';

export interface TestContainerd {
  dir: string;
  socket: string;
  client: ContainerdClient;
  /** `ctr -a <socket> …`, the independent client the tests check with. */
  ctr(...args: string[]): string;
  log(): string;
  stop(): Promise<void>;
}

export async function startContainerd(): Promise<TestContainerd | { refused: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'brl-containerd-'));
  const socket = join(dir, 'containerd.sock');
  await writeFile(join(dir, 'config.toml'), [
    'version = 2',
    `root = "${join(dir, 'root')}"`,
    `state = "${join(dir, 'state')}"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]',
    '[grpc]',
    `address = "${socket}"`,
    '[ttrpc]',
    `address = "${socket}.ttrpc"`,
    '',
  ].join('\n'));
  let output = '';
  const child = spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) stream.setEncoding('utf8').on('data', (text: string) => {
    output += text;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const client = new ContainerdClient(socket);
  const stop = async (): Promise<void> => {
    client.close();
    // Shims outlive containerd by design: kill the tasks first.
    try {
      execFileSync('ctr', ['-a', socket, 'task', 'ls', '-q'], { encoding: 'utf8' }).split('\n').filter(Boolean).forEach((id) => {
        execFileSync('ctr', ['-a', socket, 'task', 'kill', '-a', '-s', 'KILL', id], { stdio: 'ignore' });
      });
      await sleep(500);
    } catch {
      // containerd already gone
    }
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
    execFileSync('sh', ['-c', `grep -o " ${dir}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
    await rm(dir, { recursive: true, force: true });
  };
  for (const deadline = Date.now() + 30_000; ; await sleep(100)) {
    try {
      await client.call('version', 'Version', {}, { timeoutMs: 1000 });
      break;
    } catch {
      if (child.exitCode !== null || Date.now() > deadline) {
        await stop();
        return { refused: `containerd did not start: ${output.slice(-500)}` };
      }
    }
  }
  const overlay = /skip loading plugin "io\.containerd\.snapshotter\.v1\.overlayfs".*/.exec(output);
  if (overlay !== null) {
    await stop();
    return { refused: `this kernel gives containerd no overlayfs: ${overlay[0]}` };
  }
  return {
    dir,
    socket,
    client,
    ctr: (...args) => execFileSync('ctr', ['-a', socket, ...args], { encoding: 'utf8' }),
    log: () => output,
    stop,
  };
}
