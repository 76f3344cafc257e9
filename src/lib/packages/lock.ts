// A per-package lock file, so two brl processes never build or publish the same package at once.
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errnoCode } from '../core/errors.ts';

const pollMs = 200;

/** Locks held or awaited in this process: the file lock cannot tell two callers of one process apart. */
const inProcess = new Map<string, Promise<void>>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === 'EPERM';
  }
}

/**
 * Creates `path` holding our pid, waiting while a live process holds it and taking it over from
 * a dead one. Resolves to the function that releases it.
 */
export async function acquireLock(path: string, onWait?: (holderPid: number) => void): Promise<() => Promise<void>> {
  const previous = inProcess.get(path) ?? Promise.resolve();
  let releaseInProcess: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (releaseInProcess = resolve));
  const ours = previous.then(() => gate);
  inProcess.set(path, ours);
  await previous;
  const release = async (): Promise<void> => {
    await rm(path, { force: true });
    releaseInProcess();
    if (inProcess.get(path) === ours) inProcess.delete(path);
  };
  await mkdir(dirname(path), { recursive: true });
  let reported = false;
  for (;;) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return release;
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') {
        releaseInProcess();
        throw error;
      }
    }
    const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
      if (!reported) onWait?.(holder);
      reported = true;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
      continue;
    }
    // Left by a process that died (or half-written): take it over. Only one remover wins the race
    // to create it again, since creation is exclusive.
    if (holder === 0) await new Promise((resolve) => setTimeout(resolve, pollMs));
    const recheck = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (recheck === holder) await rm(path, { force: true });
  }
}
