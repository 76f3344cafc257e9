// signpost's flag changes and GRUB's gptprio.next as pure functions from one GPT table to the next.
import { BrlError, ExitCode } from '../core/errors.ts';
import { type GptTable, withAttributes } from '../image/gpt.ts';
import { decodeGptPrio, encodeGptPrio, grubCandidate, setBootEverSucceeded, bootEverSucceeded, willBoot, type GptPrioFlags } from '../image/gptprio.ts';
import { type Bank, type DiskSets, findSets, type PartitionSet } from '../image/banks.ts';
import { otherSet } from './sets.ts';

export const signpostCommands = [
  'clear-inactive',
  'mark-inactive-valid',
  'upgrade-to-inactive',
  'cancel-upgrade',
  'rollback-to-inactive',
  'mark-successful-boot',
  'rewrite-table',
] as const;
export type SignpostCommand = (typeof signpostCommands)[number];

function updateFlags(table: GptTable, set: PartitionSet, change: (flags: GptPrioFlags) => GptPrioFlags): GptTable {
  const current = table.partitions.find((partition) => partition.number === set.boot.number)!;
  return withAttributes(table, set.boot.number, encodeGptPrio(current.attributes, change(decodeGptPrio(current.attributes))));
}

function flagsOf(table: GptTable, set: PartitionSet): GptPrioFlags {
  return decodeGptPrio(table.partitions.find((partition) => partition.number === set.boot.number)!.attributes);
}

export function inactiveSetOf(sets: DiskSets, active: PartitionSet, diskName: string): PartitionSet {
  const inactive = otherSet(sets, active);
  if (!inactive) {
    throw new BrlError(`${diskName} has a single partition set; there is no inactive set to change`, {
      hint: 'in-place updates need an A/B disk (variant image feature in-place-updates = true)',
      exitCode: ExitCode.badInput,
      code: 'NO_INACTIVE_SET',
    });
  }
  return inactive;
}

function refuse(message: string, hint: string, code: string): BrlError {
  return new BrlError(message, { hint, exitCode: ExitCode.conflict, code });
}

/** Applies one signpost command to `table` given the active set; returns the new table. */
export function applySignpostCommand(table: GptTable, command: SignpostCommand, activeLabel: Bank, diskName: string): GptTable {
  const sets = findSets(table, diskName);
  const active = activeLabel === 'A' ? sets.a : sets.b!;
  switch (command) {
    case 'rewrite-table':
      return table;
    case 'mark-successful-boot': {
      let next = updateFlags(table, active, (flags) => ({ ...flags, successful: true }));
      if (sets.private) next = withAttributes(next, sets.private.number, setBootEverSucceeded(sets.private.attributes, true));
      return next;
    }
    default:
      break;
  }
  const inactive = inactiveSetOf(sets, active, diskName);
  switch (command) {
    case 'clear-inactive':
      return updateFlags(table, inactive, () => ({ priority: 0, triesLeft: 0, successful: false }));
    case 'mark-inactive-valid':
      return updateFlags(table, inactive, (flags) => ({ ...flags, triesLeft: 1 }));
    case 'upgrade-to-inactive': {
      const flags = flagsOf(table, inactive);
      if (flags.priority !== 0 || flags.successful) {
        throw refuse(`set ${inactive.label} is already marked for upgrade (priority ${flags.priority}${flags.successful ? ', successful' : ''})`,
          'run `updog update-revert` (signpost cancel-upgrade) first, or reboot into it', 'ALREADY_MARKED');
      }
      if (flags.triesLeft === 0) {
        throw refuse(`set ${inactive.label} is not valid (no tries left): no complete image was written to it`,
          'stage an update first with `updog update-image`', 'INACTIVE_NOT_VALID');
      }
      const next = updateFlags(table, inactive, (current) => ({ ...current, priority: 2, successful: false }));
      return updateFlags(next, active, (current) => ({ ...current, priority: 1 }));
    }
    case 'cancel-upgrade': {
      const next = updateFlags(table, inactive, (current) => ({ ...current, priority: 0 }));
      return updateFlags(next, active, (current) => ({ ...current, priority: 2 }));
    }
    case 'rollback-to-inactive': {
      const flags = flagsOf(table, inactive);
      if (!willBoot(flags)) {
        throw refuse(`set ${inactive.label} would not boot (priority ${flags.priority}, tries ${flags.triesLeft}, not successful); refusing to roll back to it`,
          'only a set that booted successfully before, or a freshly staged one, can be rolled back to', 'INACTIVE_WONT_BOOT');
      }
      const next = updateFlags(table, inactive, (current) => ({ ...current, priority: 2 }));
      return updateFlags(next, active, (current) => ({ ...current, priority: 1 }));
    }
  }
}

export function hasBootEverSucceeded(table: GptTable, diskName: string): boolean {
  const sets = findSets(table, diskName);
  return sets.private !== undefined && bootEverSucceeded(sets.private.attributes);
}

/**
 * The set GRUB's gptprio.next picks: BOOT partitions in partition order, a candidate needs tries
 * or the successful bit and a priority strictly above the best so far (from 0), so priority 0
 * never boots and ties go to the lower-numbered partition.
 */
export function grubChoice(table: GptTable, diskName: string): PartitionSet | undefined {
  const sets = findSets(table, diskName);
  let best: PartitionSet | undefined;
  let bestPriority = 0;
  for (const set of [sets.a, sets.b].filter((s): s is PartitionSet => s !== undefined).sort((x, y) => x.boot.number - y.boot.number)) {
    const flags = flagsOf(table, set);
    if (grubCandidate(flags) && flags.priority > bestPriority) {
      best = set;
      bestPriority = flags.priority;
    }
  }
  return best;
}

/** gptprio.next: choose, and if the choice has tries left, decrement them before booting. */
export function gptprioNext(table: GptTable, diskName: string): { table: GptTable; booted: PartitionSet; decremented: boolean } {
  const booted = grubChoice(table, diskName);
  if (!booted) {
    throw new BrlError(`${diskName}: no bootable partition set (every BOOT has priority 0, or no tries and not successful); GRUB would pause 30 s and reboot`, {
      hint: 'mark a set bootable with `signpost rollback-to-inactive` or re-stage an update',
      exitCode: ExitCode.failure,
      code: 'NOTHING_TO_BOOT',
    });
  }
  const flags = flagsOf(table, booted);
  if (flags.triesLeft === 0) return { table, booted, decremented: false };
  return { table: updateFlags(table, booted, (current) => ({ ...current, triesLeft: current.triesLeft - 1 })), booted, decremented: true };
}

/**
 * Whether the inactive set is an update that was tried and did not boot: it was activated (priority
 * above 0), GRUB spent its tries, and it never marked itself successful. `upgrade-to-inactive` and
 * `clear-inactive` both leave other flags, so nothing else looks like this.
 */
export function inactiveBootFailed(flags: GptPrioFlags): boolean {
  return flags.priority > 0 && flags.triesLeft === 0 && !flags.successful;
}
