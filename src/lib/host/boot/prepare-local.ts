// prepare-local: finds the data partition (the data disk's preferred one, else the OS disk's stub),
// makes its filesystem on first boot, mounts it at /local, grows the filesystem to the partition,
// and binds /var, /opt and /mnt onto it. Runs before everything that keeps state.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, realpath, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DATA_PARTITION_GUID } from '../../image/layout.ts';

const run = promisify(execFile);

/** Directories of the root that live on the data partition, bound from /local/<name>. */
export const DATA_BACKED_DIRS = ['var', 'opt', 'mnt'] as const;

export interface DataPartition {
  device: string;
  which: 'preferred' | 'fallback';
}

/**
 * Waits up to `waitMs` for udev's link to the preferred data partition (the data disk can appear
 * after the OS disk), then settles for the OS disk's fallback stub.
 */
export async function findDataPartition(root: string, waitMs: number): Promise<DataPartition | undefined> {
  const link = (guid: string) => join(root, 'dev/disk/by-partuuid', guid);
  const deadline = Date.now() + waitMs;
  for (;;) {
    if (existsSync(link(DATA_PARTITION_GUID.preferred))) return { device: await realpath(link(DATA_PARTITION_GUID.preferred)), which: 'preferred' };
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (existsSync(link(DATA_PARTITION_GUID.fallback))) return { device: await realpath(link(DATA_PARTITION_GUID.fallback)), which: 'fallback' };
  return undefined;
}

/** ext4 (magic 0xEF53 at byte 1080) or XFS (`XFSB` at 0): anything else is a partition to format. */
export async function filesystemOn(device: string): Promise<'ext4' | 'xfs' | undefined> {
  const handle = await open(device, 'r');
  try {
    const head = Buffer.alloc(2048);
    await handle.read(head, 0, head.length, 0);
    if (head.readUInt16LE(1080) === 0xef53) return 'ext4';
    if (head.subarray(0, 4).toString('latin1') === 'XFSB') return 'xfs';
    return undefined;
  } finally {
    await handle.close();
  }
}

/** Mount points from /proc/self/mountinfo (field 5, octal escapes decoded). */
export async function mountPoints(mountinfo = '/proc/self/mountinfo'): Promise<Set<string>> {
  const text = await readFile(mountinfo, 'utf8');
  return new Set(text.split('\n').filter(Boolean).map((line) => (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))));
}

export interface PrepareLocalResult {
  device: string;
  which: 'preferred' | 'fallback';
  formatted: boolean;
  mounted: string[];
}

/**
 * The root must be the read-only, verity-backed filesystem: a write to it has to fail with EROFS.
 * A root that takes the write is not the verified one (or not protected), so the boot stops here,
 * before anything keeps state, and the unsuccessful boot falls back to the other bank.
 */
export async function assertRootReadOnly(root = '/'): Promise<void> {
  const probe = join(root, `.brl-write-probe-${process.pid}`);
  let handle;
  try {
    handle = await open(probe, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EROFS') return;
    throw new Error(`cannot tell whether the root is read-only: writing ${probe} failed with ${(error as Error).message}`);
  }
  await handle.close();
  await rm(probe, { force: true });
  throw new Error(`the root filesystem at ${root} accepted a write (${probe}); a brl root must be read-only and verity-protected`);
}

/** On the running host (root `/`): idempotent, so a restarted unit does no harm. */
export async function prepareLocal(options: { waitMs?: number; log?: (line: string) => void } = {}): Promise<PrepareLocalResult> {
  const log = options.log ?? (() => undefined);
  await assertRootReadOnly();
  log('root is read-only: a write to / failed with EROFS');
  const partition = await findDataPartition('/', options.waitMs ?? 10_000);
  if (partition === undefined) {
    throw new Error(`no data partition: neither ${DATA_PARTITION_GUID.preferred} nor ${DATA_PARTITION_GUID.fallback} appeared in /dev/disk/by-partuuid`);
  }
  log(`data partition ${partition.device} (${partition.which})`);
  const mounted: string[] = [];
  let formatted = false;
  let points = await mountPoints();
  if (!points.has('/local')) {
    if ((await filesystemOn(partition.device)) === undefined) {
      await run('mkfs.ext4', ['-q', '-F', '-m', '0', partition.device]);
      formatted = true;
      log(`made an ext4 filesystem on ${partition.device}`);
    }
    await run('mount', ['-t', 'ext4', '-o', 'noatime,nosuid,nodev', partition.device, '/local']);
    mounted.push('/local');
    // The partition may be larger than the filesystem the image shipped (a bigger volume): grow it online.
    await run('resize2fs', [partition.device]);
    points = await mountPoints();
  }
  for (const dir of DATA_BACKED_DIRS) {
    const target = `/${dir}`;
    if (points.has(target)) continue;
    await mkdir(`/local/${dir}`, { recursive: true });
    await run('mount', ['--bind', `/local/${dir}`, target]);
    mounted.push(target);
  }
  log(`mounted ${mounted.join(', ') || 'nothing new'}`);
  return { device: partition.device, which: partition.which, formatted, mounted };
}
