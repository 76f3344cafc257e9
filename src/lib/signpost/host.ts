// Which disk and which set a host runs from: the BOOT PARTUUID GRUB booted, read from the host root.
import { readFile, realpath, readlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';
import type { DiskSets, PartitionSet } from '../image/banks.ts';
import { setByBootPartUuid } from './sets.ts';

/** A host: its root directory and the OS disk (file or block device). */
export interface HostTarget {
  /** Root directory of the host's filesystem (`/` on a real host). */
  root: string;
  /** The OS disk; undefined = the disk holding the running root. */
  disk?: string;
}

/**
 * Written by `signpost next-boot` (the GRUB model) under the host root: the PARTUUID of the BOOT
 * partition it booted. On a real host GRUB passes the same value on the kernel command line.
 */
export function bootRecordPath(root: string): string {
  return join(root, 'run', 'signpost', 'booted-boot-partuuid');
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * The PARTUUID of the booted BOOT partition: the `next-boot` record, else the verity table on the
 * kernel command line (`PARTUUID=<boot>/PARTNROFF=1`, expanded by GRUB from `$boot_uuid`).
 */
export async function bootedPartUuid(root: string): Promise<string | undefined> {
  const record = await readOptional(bootRecordPath(root));
  if (record !== undefined && record.trim() !== '') return record.trim().toLowerCase();
  const cmdline = await readOptional(join(root, 'proc', 'cmdline'));
  const match = cmdline === undefined ? null : /PARTUUID=([0-9a-fA-F-]{36})\/PARTNROFF=1/.exec(cmdline);
  return match ? match[1]!.toLowerCase() : undefined;
}

/** The active (running) set of `sets`, or a BrlError saying how to tell brl. */
export async function activeSet(root: string, sets: DiskSets, diskName: string): Promise<PartitionSet> {
  const partUuid = await bootedPartUuid(root);
  if (partUuid === undefined) {
    throw new BrlError(`cannot tell which partition set of ${diskName} is running: no dm-verity root on the kernel command line under ${root} and no boot record at ${bootRecordPath(root)}`, {
      hint: 'for a disk image, boot it first with `brl signpost next-boot --disk <image> --root <dir>`',
      exitCode: ExitCode.notFound,
      code: 'NO_ACTIVE_SET',
    });
  }
  const set = setByBootPartUuid(sets, partUuid);
  if (!set) {
    throw new BrlError(`${diskName} has no BOOT partition with PARTUUID ${partUuid}, the one the host booted from`, {
      hint: 'pass the disk this host booted from with --disk',
      exitCode: ExitCode.badInput,
      code: 'NOT_THE_BOOT_DISK',
    });
  }
  return set;
}

/** The whole disk holding the booted BOOT partition, via /dev/disk/by-partuuid and sysfs. */
export async function defaultDisk(root: string): Promise<string> {
  const partUuid = await bootedPartUuid(root);
  if (partUuid !== undefined) {
    try {
      const partitionDevice = await realpath(join(root, 'dev', 'disk', 'by-partuuid', partUuid));
      const sysLink = await readlink(join(root, 'sys', 'class', 'block', basename(partitionDevice)));
      return join(root, 'dev', basename(join(sysLink, '..')));
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
    }
  }
  throw new BrlError(`cannot find the disk this host booted from under ${root}`, {
    hint: 'pass the OS disk (block device or disk image file) with --disk',
    exitCode: ExitCode.notFound,
    code: 'NO_DISK',
  });
}
