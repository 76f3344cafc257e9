// FIFOs for containerd's stdio: containerd's shim opens a plain path as a FIFO (its `fifo` scheme),
// and the host programs hold the other end (`apiclient exec`'s launcher, host-ctr's output).
import { execFile } from 'node:child_process';
import { constants, open } from 'node:fs';
import { Socket } from 'node:net';
import { promisify } from 'node:util';

/**
 * Owner-only FIFOs (a FIFO already there is kept). Node has no mkfifo(3), and the host image has
 * no coreutils: systemd-tmpfiles (systemd's, on every host) makes them from `p` lines.
 */
export async function makeFifos(paths: string[]): Promise<void> {
  const lines = paths.map((path) => `p "${path.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}" 0600 - - -\n`).join('');
  await new Promise<void>((resolve, reject) => {
    const child = execFile('systemd-tmpfiles', ['--create', '-'], (error, _stdout, stderr) => {
      if (error === null) resolve();
      else reject(new Error(`systemd-tmpfiles could not make the FIFOs: ${stderr.trim() || error.message}`));
    });
    child.stdin?.end(lines);
  });
}

/**
 * A FIFO end as a libuv pipe: epoll-driven, so a FIFO nobody has opened yet or that stays silent
 * never holds one of the thread pool's four threads (fs streams would). A read end opened before
 * any writer waits for one (Linux reports no hang-up until a writer has come), and ends once the
 * last writer has closed.
 */
export async function openFifo(path: string, direction: 'read' | 'write'): Promise<Socket> {
  // The write end opens read-write: a write-only open fails while no reader is there, and the
  // shim opens its reader only when it sets the process up.
  const flags = (direction === 'read' ? constants.O_RDONLY : constants.O_RDWR) | constants.O_NONBLOCK;
  // A plain descriptor, not a FileHandle: the socket owns and closes it.
  const fd = await promisify(open)(path, flags);
  return new Socket({ fd, readable: direction === 'read', writable: direction === 'write' });
}
