// Describes a Bottlerocket disk image: partition table, A/B gptprio state, verity parameters, grub.cfg table, os-release.
import { parseOsRelease } from '../core/os-release.ts';
import { type GptPartition, partitionOffsetBytes, partitionSizeBytes, readGpt } from './gpt.ts';
import { bootEverSucceeded, decodeGptPrio, type GptPrioFlags } from './gptprio.ts';
import { type Bank, findRole, partitionRoles } from './banks.ts';
import { filesystemKind, readExt4File } from './fs-files.ts';
import { openImage, type ImageSource } from './image-source.ts';
import { parseDmVerityTable, readVeritySuperblock, type ParsedDmVerityTable } from './verity.ts';

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
    const hash = findRole(gpt.table, `HASH-${bank}`);
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
    const boot = findRole(gpt.table, `BOOT-${bank}`);
    const table = boot ? await readGrubVerityTable(source.rawPath, boot) : undefined;
    if (table !== undefined && typeof table !== 'string') inspection.grub.push({ bank, ...table });
  }
  const rootA = findRole(gpt.table, 'ROOT-A');
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
