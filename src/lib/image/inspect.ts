// Describes a Bottlerocket disk image: partition table, A/B gptprio state, verity parameters, grub.cfg table, os-release.
import { parseOsRelease } from '../core/os-release.ts';
import { type GptPartition, partitionOffsetBytes, partitionSizeBytes, readGpt } from './gpt.ts';
import { bootEverSucceeded, decodeGptPrio, type GptPrioFlags } from './gptprio.ts';
import { type Bank, findRole, partitionRoles } from './banks.ts';
import { BrlError } from '../core/errors.ts';
import { isExt4, readExt4File } from './ext4-read.ts';
import type { BlockReader, OpenedDiskImage } from './image-reader.ts';
import { openDiskImage } from './image-source.ts';
import { parseVeritySuperblock, VERITY_SUPERBLOCK_SIZE } from './verity.ts';
import { readBootVerityTable, type VerityTable } from './verity-table.ts';

export interface InspectedPartition {
  number: number;
  /** Role by type GUID and order (first of a type = bank A, second = bank B), e.g. `BOOT-A`. */
  role: string;
  name: string;
  typeGuid: string;
  uniqueGuid: string;
  firstLba: string;
  lastLba: string;
  offsetBytes: number;
  sizeBytes: number;
  /** 64 attribute bits as 16 hex digits, as sgdisk shows them. */
  attributes: string;
  gptprio?: GptPrioFlags;
  bootEverSucceeded?: boolean;
}

export interface InspectedVerity {
  bank: Bank;
  dataBlocks: number;
  salt: string;
  uuid: string;
  hashType: number;
  algorithm: string;
  dataBlockSize: number;
  hashBlockSize: number;
}

export interface ImageInspection {
  path: string;
  format: 'raw' | 'lz4';
  diskGuid: string;
  sizeBytes: number;
  gptSource: 'primary' | 'backup';
  gptProblems: string[];
  partitions: InspectedPartition[];
  verity: InspectedVerity[];
  /** The dm-verity table in each populated bank's grub.cfg. */
  grub: (VerityTable & { bank: Bank })[];
  /** os-release of bank A's root filesystem (ext4 only). */
  osRelease?: Record<string, string>;
}

/** The dm-verity table in grub.cfg on BOOT, or the reason it cannot be read (a damaged image is described, not refused). */
export async function bootVerityTable(disk: BlockReader, boot: GptPartition, label: string): Promise<VerityTable | string> {
  try {
    return await readBootVerityTable(disk, partitionOffsetBytes(boot), `${label} (partition ${boot.number})`);
  } catch (error) {
    if (error instanceof BrlError) return error.message;
    throw error;
  }
}

async function readOsRelease(disk: BlockReader, root: GptPartition): Promise<Record<string, string> | undefined> {
  const offset = partitionOffsetBytes(root);
  if (!(await isExt4(disk, offset))) return undefined;
  const text = (await readExt4File(disk, offset, '/usr/lib/os-release', 'ROOT-A')) ?? (await readExt4File(disk, offset, '/etc/os-release', 'ROOT-A'));
  return text === undefined ? undefined : parseOsRelease(text.toString('utf8'));
}

/** Describes an open disk image; reads only the few blocks it shows. */
export async function inspectDisk(disk: OpenedDiskImage): Promise<ImageInspection> {
  const gpt = await readGpt(disk);
  const roles = partitionRoles(gpt.table.partitions);
  const partitions = gpt.table.partitions.map((partition): InspectedPartition => {
    const role = roles.get(partition.number) ?? 'UNKNOWN';
    return {
      number: partition.number,
      role,
      name: partition.name,
      typeGuid: partition.typeGuid,
      uniqueGuid: partition.uniqueGuid,
      firstLba: partition.firstLba.toString(),
      lastLba: partition.lastLba.toString(),
      offsetBytes: partitionOffsetBytes(partition),
      sizeBytes: partitionSizeBytes(partition),
      attributes: partition.attributes.toString(16).padStart(16, '0'),
      ...(role.startsWith('BOOT-') ? { gptprio: decodeGptPrio(partition.attributes) } : {}),
      ...(role === 'PRIVATE' ? { bootEverSucceeded: bootEverSucceeded(partition.attributes) } : {}),
    };
  });
  const inspection: ImageInspection = {
    path: disk.name,
    format: disk.format,
    diskGuid: gpt.table.diskGuid,
    sizeBytes: Number(gpt.table.totalSectors) * 512,
    gptSource: gpt.source,
    gptProblems: gpt.problems,
    partitions,
    verity: [],
    grub: [],
  };
  for (const bank of ['A', 'B'] as const) {
    const hash = findRole(gpt.table, `HASH-${bank}`);
    const superblock = hash ? parseVeritySuperblock(await disk.read(partitionOffsetBytes(hash), VERITY_SUPERBLOCK_SIZE)) : undefined;
    if (superblock) {
      inspection.verity.push({
        bank,
        dataBlocks: superblock.dataBlocks,
        salt: superblock.salt.toString('hex'),
        uuid: superblock.uuid,
        hashType: superblock.hashType,
        algorithm: superblock.algorithm,
        dataBlockSize: superblock.dataBlockSize,
        hashBlockSize: superblock.hashBlockSize,
      });
    }
    const boot = findRole(gpt.table, `BOOT-${bank}`);
    const table = boot ? await bootVerityTable(disk, boot, `BOOT-${bank}`) : undefined;
    if (table !== undefined && typeof table !== 'string') inspection.grub.push({ bank, ...table });
  }
  const rootA = findRole(gpt.table, 'ROOT-A');
  const osRelease = rootA ? await readOsRelease(disk, rootA) : undefined;
  if (osRelease) inspection.osRelease = osRelease;
  return inspection;
}

/** Inspects a raw or `.lz4` disk image. */
export async function inspectImage(path: string): Promise<ImageInspection> {
  const disk = await openDiskImage(path);
  try {
    return await inspectDisk(disk);
  } finally {
    await disk.close();
  }
}
