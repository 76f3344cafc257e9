// One updog at a time per host, across processes. The lock is a Unix socket in Linux's abstract
// namespace, named after the host root: only one process can bind it, and the kernel releases it
// when that process exits or is killed, so there is no stale lock to detect or take over (a pid
// file can only guess, and two processes taking over the same stale file both win). A pid file
// beside it says who holds the lock, for the message a second updog prints.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';

export function lockPath(root: string): string {
  return join(root, 'run', 'lock', 'updog.lock');
}

/** The abstract socket name for the host at `root` (one per root, so test roots do not collide). */
export function lockName(root: string): string {
  return `\0brl-updog-lock-${createHash('sha256').update(resolve(root)).digest('hex').slice(0, 32)}`;
}

function bind(name: string): Promise<Server | undefined> {
  const server = createServer();
  return new Promise((done, fail) => {
    server.once('error', (error) => (errnoCode(error) === 'EADDRINUSE' ? done(undefined) : fail(error)));
    server.listen(name, () => {
      // Holding the lock must not keep the process alive by itself.
      server.unref();
      done(server);
    });
  });
}

/** Runs `action` holding the host's updog lock; throws UPDOG_BUSY while another process holds it. */
export async function withUpdogLock<T>(root: string, action: () => Promise<T>): Promise<T> {
  const path = lockPath(root);
  const server = await bind(lockName(root));
  if (server === undefined) {
    const holder = (await readFile(path, 'utf8').catch(() => '')).trim();
    throw new BrlError(`another updog${/^\d+$/.test(holder) ? ` (pid ${holder})` : ''} is updating this host`, {
      hint: 'wait for it to finish (the lock is released when that process ends)',
      exitCode: ExitCode.conflict,
      code: 'UPDOG_BUSY',
    });
  }
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, `${process.pid}\n`);
    return await action();
  } finally {
    await rm(path, { force: true });
    server.close();
  }
}
