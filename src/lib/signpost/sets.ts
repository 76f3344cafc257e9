// The A/B partition sets of a Bottlerocket disk, found by partition type GUID as signpost does.
import { BrlError, ExitCode } from '../core/errors.ts';
import { type GptPartition, type GptTable, partitionOffsetBytes, partitionSizeBytes } from '../image/gpt.ts';
import { decodeGptPrio, type GptPrioFlags } from '../image/gptprio.ts';
import { PARTITION_TYPE } from '../image/layout.ts';

export type SetLabel = 'A' | 'B';

/** One bank: BOOT (carries the gptprio flags), ROOT and HASH. */
export interface PartitionSet {
  label: SetLabel;
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

function ofType(table: GptTable, typeGuid: string): GptPartition[] {
  return table.partitions.filter((partition) => partition.typeGuid === typeGuid).sort((x, y) => x.number - y.number);
}

/** Finds the sets: the first partition of each type forms A, the second B. */
export function findSets(table: GptTable, diskName: string): DiskSets {
  const boots = ofType(table, PARTITION_TYPE.boot);
  const roots = ofType(table, PARTITION_TYPE.root);
  const hashes = ofType(table, PARTITION_TYPE.hash);
  if (boots.length === 0 || roots.length === 0 || hashes.length === 0) {
    throw new BrlError(`${diskName} is not a Bottlerocket disk: it has no BOOT, ROOT and HASH partitions`, {
      hint: 'pass the whole OS disk with --disk (not the data disk or a partition)',
      exitCode: ExitCode.badInput,
      code: 'NOT_A_BOTTLEROCKET_DISK',
    });
  }
  const set = (label: SetLabel, index: number): PartitionSet | undefined => {
    const boot = boots[index];
    const root = roots[index];
    const hash = hashes[index];
    if (!boot && !root && !hash) return undefined;
    if (!boot || !root || !hash) {
      throw new BrlError(`${diskName}: partition set ${label} is incomplete (needs one BOOT, ROOT and HASH partition each)`, {
        exitCode: ExitCode.badInput,
        code: 'INCOMPLETE_SET',
      });
    }
    return { label, boot, root, hash };
  };
  return { a: set('A', 0)!, b: set('B', 1), private: ofType(table, PARTITION_TYPE.private)[0] };
}

export function setFlags(set: PartitionSet): GptPrioFlags {
  return decodeGptPrio(set.boot.attributes);
}

/** The set whose BOOT partition has this unique GUID (PARTUUID). */
export function setByBootPartUuid(sets: DiskSets, partUuid: string): PartitionSet | undefined {
  const wanted = partUuid.toLowerCase();
  return [sets.a, sets.b].find((set) => set?.boot.uniqueGuid === wanted);
}

export function otherSet(sets: DiskSets, set: PartitionSet): PartitionSet | undefined {
  return set.label === 'A' ? sets.b : sets.a;
}

/** Where a partition lives on the disk, for messages and JSON. */
export function describePartition(partition: GptPartition): { number: number; partUuid: string; offsetBytes: number; sizeBytes: number } {
  return {
    number: partition.number,
    partUuid: partition.uniqueGuid,
    offsetBytes: partitionOffsetBytes(partition),
    sizeBytes: partitionSizeBytes(partition),
  };
}
