// The A/B banks of a Bottlerocket disk, found by partition type GUID as GRUB and signpost find them (image-layout.md §1).
import { BrlError, ExitCode } from '../core/errors.ts';
import type { GptPartition, GptTable } from './gpt.ts';
import { DATA_PARTITION_GUID, PARTITION_TYPE } from './layout.ts';

export type Bank = 'A' | 'B';

/** One bank: BOOT (carries the gptprio flags), ROOT and HASH. */
export interface PartitionSet {
  label: Bank;
  boot: GptPartition;
  root: GptPartition;
  hash: GptPartition;
}

export interface DiskSets {
  a: PartitionSet;
  /** Undefined on a single-bank disk. */
  b: PartitionSet | undefined;
  private: GptPartition | undefined;
}

const ROLE_BY_TYPE: Record<string, string> = {
  [PARTITION_TYPE.bios]: 'BIOS',
  [PARTITION_TYPE.efi]: 'EFI',
  [PARTITION_TYPE.efiBackup]: 'EFI',
  [PARTITION_TYPE.boot]: 'BOOT',
  [PARTITION_TYPE.root]: 'ROOT',
  [PARTITION_TYPE.hash]: 'HASH',
  [PARTITION_TYPE.reserved]: 'RESERVED',
  [PARTITION_TYPE.private]: 'PRIVATE',
  [PARTITION_TYPE.data]: 'DATA',
};
const BANKED = new Set(['EFI', 'BOOT', 'ROOT', 'HASH', 'RESERVED', 'DATA']);

/**
 * Role of each partition by partition number, e.g. `BOOT-A`: the first partition of a type is
 * bank A, the second bank B (further ones are numbered from 3). A data disk's lone preferred DATA
 * partition is DATA-B.
 */
export function partitionRoles(partitions: readonly GptPartition[]): Map<number, string> {
  const seen = new Map<string, number>();
  const roles = new Map<number, string>();
  const osDisk = partitions.some((other) => other.typeGuid === PARTITION_TYPE.boot);
  for (const partition of [...partitions].sort((a, b) => a.number - b.number)) {
    const base = ROLE_BY_TYPE[partition.typeGuid] ?? 'UNKNOWN';
    if (base === 'DATA' && partition.uniqueGuid === DATA_PARTITION_GUID.preferred && !osDisk) {
      // The split plan's separate data disk holds DATA-B, the preferred data partition.
      roles.set(partition.number, 'DATA-B');
      continue;
    }
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    roles.set(partition.number, BANKED.has(base) ? `${base}-${count === 0 ? 'A' : count === 1 ? 'B' : String(count + 1)}` : base);
  }
  return roles;
}

/** The partition with this role (`BOOT-A`, `HASH-B`, `PRIVATE`, …), if the table has one. */
export function findRole(table: GptTable, role: string): GptPartition | undefined {
  const roles = partitionRoles(table.partitions);
  return table.partitions.find((partition) => roles.get(partition.number) === role);
}

/** The banks of an OS disk; a disk without BOOT, ROOT and HASH, or with half a bank, is refused. */
export function findSets(table: GptTable, diskName: string): DiskSets {
  const roles = partitionRoles(table.partitions);
  const byRole = new Map(table.partitions.map((partition) => [roles.get(partition.number), partition]));
  if (!['BOOT-A', 'ROOT-A', 'HASH-A'].every((role) => byRole.has(role))) {
    throw new BrlError(`${diskName} is not a Bottlerocket disk: it has no BOOT, ROOT and HASH partitions`, {
      hint: 'pass the whole OS disk with --disk (not the data disk or a partition)',
      exitCode: ExitCode.badInput,
      code: 'NOT_A_BOTTLEROCKET_DISK',
    });
  }
  const set = (label: Bank): PartitionSet | undefined => {
    const boot = byRole.get(`BOOT-${label}`);
    const root = byRole.get(`ROOT-${label}`);
    const hash = byRole.get(`HASH-${label}`);
    if (!boot && !root && !hash) return undefined;
    if (!boot || !root || !hash) {
      throw new BrlError(`${diskName}: partition set ${label} is incomplete (needs one BOOT, ROOT and HASH partition each)`, {
        exitCode: ExitCode.badInput,
        code: 'INCOMPLETE_SET',
      });
    }
    return { label, boot, root, hash };
  };
  return { a: set('A')!, b: set('B'), private: byRole.get('PRIVATE') };
}
