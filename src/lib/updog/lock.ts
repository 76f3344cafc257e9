// One updog at a time per host: a pid lock file under the host's /run, taken before touching the disk.
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';

export function lockPath(root: string): string {
  return join(root, 'run', 'lock', 'updog.lock');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === 'EPERM';
  }
}

/** Runs `action` holding the host's updog lock; a lock left by a dead process is taken over. */
export async function withUpdogLock<T>(root: string, action: () => Promise<T>): Promise<T> {
  const path = lockPath(root);
  await mkdir(dirname(path), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      break;
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST' || attempt > 0) throw error;
      const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(holder) && holder > 0 && alive(holder)) {
        throw new BrlError(`another updog (pid ${holder}) is updating this host`, {
          hint: `wait for it to finish; if no updog is running, remove ${path}`,
          exitCode: ExitCode.conflict,
          code: 'UPDOG_BUSY',
        });
      }
      await rm(path, { force: true });
    }
  }
  try {
    return await action();
  } finally {
    await rm(path, { force: true });
  }
}
