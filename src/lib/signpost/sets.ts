// Signpost's view of the A/B sets (found by `image/banks.ts`): flags, lookup by PARTUUID, the other set.
import { type GptPartition, partitionOffsetBytes, partitionSizeBytes } from '../image/gpt.ts';
import type { DiskSets, PartitionSet } from '../image/banks.ts';
import { decodeGptPrio, type GptPrioFlags } from '../image/gptprio.ts';

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
