// The resumable `.part` file of one cache entry: kept across runs, used by one process at a time.
import { link, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errnoCode } from '../core/errors.ts';
import { tempPathFor } from '../core/fs.ts';

export interface PartialFile {
  /** Where the bytes go until they are verified and renamed to the final path. */
  path: string;
  /** Drops the claim; `keepBytes` leaves the bytes for the next run to resume. */
  release(keepBytes: boolean): Promise<void>;
}

/**
 * Claims `.<file>.part` next to `finalPath` under a `.<file>.lock` holding our pid. When another
 * live process holds it, a private temp path is used instead: both downloads stay correct, the
 * last verified rename wins and the bytes are identical.
 */
export async function claimPartialFile(finalPath: string): Promise<PartialFile> {
  const dir = dirname(finalPath);
  const name = basename(finalPath);
  const partPath = join(dir, `.${name}.part`);
  const lockPath = join(dir, `.${name}.lock`);
  if (await tryLock(lockPath)) {
    return {
      path: partPath,
      release: async (keepBytes) => {
        if (!keepBytes) await rm(partPath, { force: true });
        await rm(lockPath, { force: true });
      },
    };
  }
  const tempPath = tempPathFor(finalPath);
  return { path: tempPath, release: () => rm(tempPath, { force: true }) };
}

async function tryLock(lockPath: string): Promise<boolean> {
  // The pid is written first and linked into place, so the lock never exists without its owner.
  const candidate = tempPathFor(lockPath);
  await writeFile(candidate, `${process.pid}\n`);
  try {
    for (let round = 0; round < 2; round++) {
      try {
        await link(candidate, lockPath);
        return true;
      } catch (error) {
        if (errnoCode(error) !== 'EEXIST') throw error;
      }
      const holder = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
      if (holder === process.pid || isAlive(holder)) return false;
      // Its process is gone (killed mid-download): the bytes it left are ours to resume.
      await rm(lockPath, { force: true });
    }
    return false;
  } finally {
    await rm(candidate, { force: true });
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === 'EPERM';
  }
}
