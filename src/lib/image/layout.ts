// Bottlerocket's disk partition plan: sizes from os-image-size-gib, labels, type GUIDs, fixed DATA GUIDs, A/B or single bank.
import { BrlError, ExitCode } from '../core/errors.ts';
import { createGptTable, type GptTable, SECTOR_SIZE } from './gpt.ts';
import { FRESH_BOOT_A_ATTRIBUTES } from './gptprio.ts';
import { derivedUuid, type IdContext } from './ids.ts';

export const PARTITION_TYPE = {
  bios: '21686148-6449-6e6f-744e-656564454649',
  efi: 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b',
  /** Placeholder for EFI-B, which is never written. */
  efiBackup: 'b39ce39c-0a00-b4ab-2d11-f18f8237a21c',
  boot: '6b636168-7420-6568-2070-6c616e657421',
  root: '5526016a-1a97-4ea4-b39a-b7c8c6ca4502',
  hash: '598f10af-c955-4456-6a99-7720068a6cea',
  reserved: '0c5d99a5-d331-4147-baef-08e2b855bdc9',
  private: '440408bb-eb0b-4328-a6e5-a29038fad706',
  data: '626f7474-6c65-6474-6861-726d61726b73',
} as const;

/** The OS picks its data partition by these unique GUIDs, so they are fixed, not derived. */
export const DATA_PARTITION_GUID = {
  preferred: '5b94e8df-28b8-485c-9d19-362263b5944c',
  fallback: '69040874-417d-4e26-a764-7885f22007ea',
} as const;

export type PartitionPlanKind = 'split' | 'unified';

export interface LayoutOptions {
  /** N: size of the OS disk (split) or its OS part (unified), in GiB. */
  osImageSizeGiB: number;
  /** D: size of the data disk (split) or data partition (unified), in GiB. */
  dataImageSizeGiB: number;
  partitionPlan: PartitionPlanKind;
  /** false = single bank: no B partitions, bank A twice as large. */
  inPlaceUpdates: boolean;
}

export const DEFAULT_LAYOUT: LayoutOptions = { osImageSizeGiB: 2, dataImageSizeGiB: 1, partitionPlan: 'split', inPlaceUpdates: true };

export type PartitionKey =
  | 'BIOS' | 'EFI-A' | 'BOOT-A' | 'ROOT-A' | 'HASH-A' | 'RESERVED-A'
  | 'EFI-B' | 'BOOT-B' | 'ROOT-B' | 'HASH-B' | 'RESERVED-B'
  | 'PRIVATE' | 'DATA-A' | 'DATA-B';

export interface PlannedPartition {
  key: PartitionKey;
  /** GPT partition number. */
  number: number;
  /** GPT name (empty for DATA: the OS labels it at boot). */
  name: string;
  typeGuid: string;
  startMiB: number;
  sizeMiB: number;
  /** The §11 target whose derived UUID is the unique GUID, or the fixed GUID for DATA. */
  guid: { derivedFrom: string } | { fixed: string };
  attributes: bigint;
}

export interface DiskPlan {
  disk: 'os' | 'data';
  sizeMiB: number;
  /** §11 target of the disk GUID. */
  diskGuidTarget: 'gpt-disk-os' | 'gpt-disk-data';
  partitions: PlannedPartition[];
}

export const MIB_SECTORS = (1024 * 1024) / SECTOR_SIZE;

function checkOptions(options: LayoutOptions): void {
  for (const [key, value] of [['os-image-size-gib', options.osImageSizeGiB], ['data-image-size-gib', options.dataImageSizeGiB]] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw new BrlError(`image-layout.${key} must be a whole number of GiB ≥ 1, got ${value}`, {
        exitCode: ExitCode.badInput,
        code: 'BAD_LAYOUT',
        hint: `set ${key} to e.g. 2 or 4`,
      });
    }
  }
}

/** The OS disk's partitions in offset (= number) order, with sizes from image-layout.md §1. */
export function planOsDisk(options: LayoutOptions): DiskPlan {
  checkOptions(options);
  const n = options.osImageSizeGiB;
  const bankScale = options.inPlaceUpdates ? 1 : 2;
  const rows: Omit<PlannedPartition, 'number' | 'startMiB'>[] = [];
  const add = (key: PartitionKey, name: string, typeGuid: string, sizeMiB: number, guid: PlannedPartition['guid'], attributes = 0n): void => {
    rows.push({ key, name, typeGuid, sizeMiB, guid, attributes });
  };
  const derived = (key: string): PlannedPartition['guid'] => ({ derivedFrom: `gpt-part-${key.toLowerCase()}` });
  add('BIOS', 'BIOS-BOOT', PARTITION_TYPE.bios, 4, derived('bios'));
  const banks = options.inPlaceUpdates ? (['A', 'B'] as const) : (['A'] as const);
  for (const bank of banks) {
    add(`EFI-${bank}`, bank === 'A' ? 'EFI-SYSTEM' : 'EFI-BACKUP', bank === 'A' ? PARTITION_TYPE.efi : PARTITION_TYPE.efiBackup, 5 * bankScale, derived(`efi-${bank}`));
    add(`BOOT-${bank}`, `BOTTLEROCKET-BOOT-${bank}`, PARTITION_TYPE.boot, 20 * n * bankScale, derived(`boot-${bank}`), bank === 'A' ? FRESH_BOOT_A_ATTRIBUTES : 0n);
    add(`ROOT-${bank}`, `BOTTLEROCKET-ROOT-${bank}`, PARTITION_TYPE.root, 460 * n * bankScale, derived(`root-${bank}`));
    add(`HASH-${bank}`, `BOTTLEROCKET-HASH-${bank}`, PARTITION_TYPE.hash, 5 * n * bankScale, derived(`hash-${bank}`));
    add(`RESERVED-${bank}`, `BOTTLEROCKET-RESERVED-${bank}`, PARTITION_TYPE.reserved, (15 * n - 5) * bankScale, derived(`reserved-${bank}`));
  }
  add('PRIVATE', 'BOTTLEROCKET-PRIVATE', PARTITION_TYPE.private, 24 * n - 7, derived('private'));
  const unified = options.partitionPlan === 'unified';
  add('DATA-A', '', PARTITION_TYPE.data, unified ? options.dataImageSizeGiB * 1024 : 1, {
    fixed: unified ? DATA_PARTITION_GUID.preferred : DATA_PARTITION_GUID.fallback,
  });
  let startMiB = 1;
  const partitions = rows.map((row, index) => {
    const planned = { ...row, number: index + 1, startMiB };
    startMiB += row.sizeMiB;
    return planned;
  });
  const sizeMiB = 1024 * (n + (unified ? options.dataImageSizeGiB : 0));
  return { disk: 'os', sizeMiB, diskGuidTarget: 'gpt-disk-os', partitions };
}

/** The split plan's separate data disk (DATA-B, correctly sized; see §1 "Upstream quirk"); none for unified. */
export function planDataDisk(options: LayoutOptions): DiskPlan | undefined {
  checkOptions(options);
  if (options.partitionPlan !== 'split') return undefined;
  const sizeMiB = options.dataImageSizeGiB * 1024;
  return {
    disk: 'data',
    sizeMiB,
    diskGuidTarget: 'gpt-disk-data',
    partitions: [{
      key: 'DATA-B', number: 1, name: '', typeGuid: PARTITION_TYPE.data, startMiB: 1, sizeMiB: sizeMiB - 2,
      guid: { fixed: DATA_PARTITION_GUID.preferred }, attributes: 0n,
    }],
  };
}

/** Last 512-byte sector of a partition: (start + size) · 2048 − 1. */
export function partitionEndSector(partition: Pick<PlannedPartition, 'startMiB' | 'sizeMiB'>): bigint {
  return BigInt(partition.startMiB + partition.sizeMiB) * BigInt(MIB_SECTORS) - 1n;
}

export function partitionGuid(partition: PlannedPartition, ids: IdContext): string {
  return 'fixed' in partition.guid ? partition.guid.fixed : derivedUuid(ids, partition.guid.derivedFrom);
}

/** The GPT for a plan, with GUIDs derived from the build's identity. */
export function gptForPlan(plan: DiskPlan, ids: IdContext): GptTable {
  return createGptTable({
    diskGuid: derivedUuid(ids, plan.diskGuidTarget),
    totalSectors: BigInt(plan.sizeMiB) * BigInt(MIB_SECTORS),
    partitions: plan.partitions.map((partition) => ({
      number: partition.number,
      typeGuid: partition.typeGuid,
      uniqueGuid: partitionGuid(partition, ids),
      firstLba: BigInt(partition.startMiB) * BigInt(MIB_SECTORS),
      lastLba: partitionEndSector(partition),
      attributes: partition.attributes,
      name: partition.name,
    })),
  });
}

export function findPlanned(plan: DiskPlan, key: PartitionKey): PlannedPartition {
  const partition = plan.partitions.find((candidate) => candidate.key === key);
  if (!partition) throw new Error(`the ${plan.disk} disk plan has no ${key} partition`);
  return partition;
}
