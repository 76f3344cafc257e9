// signpost's commands on a host: load the GPT, change flags, write both GPT copies back.
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../core/fs.ts';
import { readGpt, writeGpt, type GptTable } from '../image/gpt.ts';
import { BrlError, ExitCode } from '../core/errors.ts';
import { activeSet, bootRecordPath, defaultDisk, type HostTarget } from './host.ts';
import { type Bank, findSets, type PartitionSet } from '../image/banks.ts';
import { describePartition, otherSet, setFlags } from './sets.ts';
import { applySignpostCommand, gptprioNext, grubChoice, hasBootEverSucceeded, inactiveBootFailed, type SignpostCommand } from './transitions.ts';
import { willBoot, type GptPrioFlags } from '../image/gptprio.ts';

export interface SetStatus {
  label: Bank;
  active: boolean;
  flags: GptPrioFlags;
  willBoot: boolean;
  boot: ReturnType<typeof describePartition>;
  root: ReturnType<typeof describePartition>;
  hash: ReturnType<typeof describePartition>;
}

export interface SignpostStatus {
  disk: string;
  sets: SetStatus[];
  activeSet: Bank;
  /** What GRUB would boot next; undefined = nothing bootable. */
  nextSet: Bank | undefined;
  hasBootEverSucceeded: boolean;
}

/** The disk path to use for a host (explicit `--disk` or the booted disk). */
export async function hostDisk(host: HostTarget): Promise<string> {
  return host.disk ?? defaultDisk(host.root);
}

export async function loadHostTable(host: HostTarget): Promise<{ disk: string; table: GptTable; active: PartitionSet }> {
  const disk = await hostDisk(host);
  const { table } = await readGpt(disk);
  const active = await activeSet(host.root, findSets(table, disk), disk);
  return { disk, table, active };
}

export function statusOf(disk: string, table: GptTable, active: Bank): SignpostStatus {
  const sets = findSets(table, disk);
  const describe = (set: PartitionSet): SetStatus => ({
    label: set.label,
    active: set.label === active,
    flags: setFlags(set),
    willBoot: willBoot(setFlags(set)),
    boot: describePartition(set.boot),
    root: describePartition(set.root),
    hash: describePartition(set.hash),
  });
  return {
    disk,
    sets: [sets.a, sets.b].filter((set): set is PartitionSet => set !== undefined).map(describe),
    activeSet: active,
    nextSet: grubChoice(table, disk)?.label,
    hasBootEverSucceeded: hasBootEverSucceeded(table, disk),
  };
}

/** The inactive set when it holds an update that was tried and did not boot (see inactiveBootFailed). */
export async function failedInactiveSet(host: HostTarget): Promise<{ active: PartitionSet; inactive: PartitionSet } | undefined> {
  const { disk, table, active } = await loadHostTable(host);
  const inactive = otherSet(findSets(table, disk), active);
  return inactive && inactiveBootFailed(setFlags(inactive)) ? { active, inactive } : undefined;
}

export async function signpostStatus(host: HostTarget): Promise<SignpostStatus> {
  const { disk, table, active } = await loadHostTable(host);
  return statusOf(disk, table, active.label);
}

/** Runs one flag-changing command and writes the GPT (both copies, CRCs updated). */
export async function runSignpostCommand(host: HostTarget, command: SignpostCommand): Promise<SignpostStatus> {
  const { disk, table, active } = await loadHostTable(host);
  const next = applySignpostCommand(table, command, active.label, disk);
  await writeGpt(disk, next);
  return statusOf(disk, next, active.label);
}

export async function signpostHasBootEverSucceeded(host: HostTarget): Promise<boolean> {
  const disk = await hostDisk(host);
  const { table } = await readGpt(disk);
  return hasBootEverSucceeded(table, disk);
}

export interface NextBootResult extends SignpostStatus {
  booted: Bank;
  /** Whether a boot try was used up (a staged, not yet successful set). */
  triesDecremented: boolean;
}

/**
 * Models one boot of a disk image: GRUB's gptprio.next chooses a set, decrements its tries and
 * writes the GPT, then the chosen BOOT PARTUUID is recorded under the host root as the running set.
 */
export async function nextBoot(host: HostTarget & { disk: string }): Promise<NextBootResult> {
  if (host.root === '/') {
    throw new BrlError('next-boot models GRUB for disk images and refuses to run against the live host root /', {
      hint: 'pass --root with a scratch directory for the simulated host',
      exitCode: ExitCode.usage,
      code: 'NEXT_BOOT_ON_LIVE_HOST',
    });
  }
  const { table } = await readGpt(host.disk);
  const recordPath = bootRecordPath(host.root);
  let outcome: ReturnType<typeof gptprioNext>;
  try {
    outcome = gptprioNext(table, host.disk);
  } catch (error) {
    await rm(recordPath, { force: true });
    throw error;
  }
  if (outcome.decremented) await writeGpt(host.disk, outcome.table);
  await mkdir(dirname(recordPath), { recursive: true });
  await writeFileAtomic(recordPath, `${outcome.booted.boot.uniqueGuid}\n`);
  return { ...statusOf(host.disk, outcome.table, outcome.booted.label), booted: outcome.booted.label, triesDecremented: outcome.decremented };
}
