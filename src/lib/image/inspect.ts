// Describes a Bottlerocket disk image: partition table, A/B gptprio state, verity parameters, grub.cfg table, os-release.
import { parseOsRelease } from '../core/os-release.ts';
import { type GptPartition, type GptReadResult, partitionOffsetBytes, partitionSizeBytes, readGpt } from './gpt.ts';
import { bootEverSucceeded, decodeGptPrio, type GptPrioFlags } from './gptprio.ts';
import { DATA_PARTITION_GUID, PARTITION_TYPE } from './layout.ts';
import { filesystemKind, readExt4File } from './fs-files.ts';
import { openImage, type ImageSource } from './image-source.ts';
import { parseDmVerityTable, readVeritySuperblock, type ParsedDmVerityTable } from './verity.ts';

export type Bank = 'A' | 'B';

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
  grub: (ParsedDmVerityTable & { bank: Bank })[];
  /** os-release of bank A's root filesystem (ext4 only). */
  osRelease?: Record<string, string>;
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
 * Role of each partition, as signpost finds the sets: first of a type is bank A, second bank B;
 * a data disk's lone preferred DATA partition is DATA-B (image-layout.md §1).
 */
export function partitionRoles(partitions: GptPartition[]): Map<number, string> {
  const seen = new Map<string, number>();
  const roles = new Map<number, string>();
  for (const partition of [...partitions].sort((a, b) => a.number - b.number)) {
    const base = ROLE_BY_TYPE[partition.typeGuid] ?? 'UNKNOWN';
    if (base === 'DATA' && partition.uniqueGuid === DATA_PARTITION_GUID.preferred && !partitions.some((other) => other.typeGuid === PARTITION_TYPE.boot)) {
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

export function findRole(gpt: GptReadResult, role: string): GptPartition | undefined {
  const roles = partitionRoles(gpt.table.partitions);
  return gpt.table.partitions.find((partition) => roles.get(partition.number) === role);
}

/** The dm-verity table of grub.cfg on a bank's BOOT partition, or a reason it could not be read. */
export async function readGrubVerityTable(rawPath: string, boot: GptPartition): Promise<ParsedDmVerityTable | string> {
  const offset = partitionOffsetBytes(boot);
  if ((await filesystemKind(rawPath, offset)) !== 'ext4') return 'no ext4 filesystem';
  const config = await readExt4File(rawPath, offset, '/grub/grub.cfg');
  if (!config) return 'no /grub/grub.cfg';
  const line = /^set dm_verity_root="([^"]*)"/m.exec(config.toString('utf8'));
  if (!line) return '/grub/grub.cfg sets no dm_verity_root';
  return parseDmVerityTable(line[1]!) ?? `/grub/grub.cfg has an unrecognised dm-verity table: ${line[1]}`;
}

export async function inspectOpenImage(source: ImageSource): Promise<ImageInspection> {
  const gpt = await readGpt(source.rawPath);
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
    path: source.path,
    format: source.format,
    diskGuid: gpt.table.diskGuid,
    sizeBytes: Number(gpt.table.totalSectors) * 512,
    gptSource: gpt.source,
    gptProblems: gpt.problems,
    partitions,
    verity: [],
    grub: [],
  };
  for (const bank of ['A', 'B'] as const) {
    const hash = findRole(gpt, `HASH-${bank}`);
    const superblock = hash ? readVeritySuperblock({ path: source.rawPath, offset: partitionOffsetBytes(hash) }) : undefined;
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
    const boot = findRole(gpt, `BOOT-${bank}`);
    const table = boot ? await readGrubVerityTable(source.rawPath, boot) : undefined;
    if (table !== undefined && typeof table !== 'string') inspection.grub.push({ bank, ...table });
  }
  const rootA = findRole(gpt, 'ROOT-A');
  if (rootA && (await filesystemKind(source.rawPath, partitionOffsetBytes(rootA))) === 'ext4') {
    const text = (await readExt4File(source.rawPath, partitionOffsetBytes(rootA), '/usr/lib/os-release')) ??
      (await readExt4File(source.rawPath, partitionOffsetBytes(rootA), '/etc/os-release'));
    if (text) inspection.osRelease = parseOsRelease(text.toString('utf8'));
  }
  return inspection;
}

/** Inspects a raw or `.lz4` disk image. */
export async function inspectImage(path: string): Promise<ImageInspection> {
  const source = await openImage(path);
  try {
    return await inspectOpenImage(source);
  } finally {
    await source.close();
  }
}
