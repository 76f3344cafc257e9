// GUID partition tables: protective MBR, primary and backup headers and entry arrays, with CRC32s.
import { open, stat, readFile, type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { BrlError, ExitCode, fileError } from '../core/errors.ts';
import type { DiskReader } from './image-reader.ts';

export const SECTOR_SIZE = 512;
export const GPT_ENTRY_COUNT = 128;
export const GPT_ENTRY_SIZE = 128;
/** Sectors taken by a standard 128 × 128-byte entry array. */
export const GPT_ENTRY_SECTORS = (GPT_ENTRY_COUNT * GPT_ENTRY_SIZE) / SECTOR_SIZE;
const HEADER_SIZE = 92;
const SIGNATURE = 'EFI PART';
const REVISION = 0x00010000;
const NAME_UNITS = 36;

export interface GptPartition {
  /** 1-based slot in the entry array (what the kernel calls partition N). */
  number: number;
  typeGuid: string;
  uniqueGuid: string;
  firstLba: bigint;
  /** Inclusive. */
  lastLba: bigint;
  /** 64 attribute bits; 48–63 are type-specific (gptprio, see gptprio.ts). */
  attributes: bigint;
  name: string;
}

export interface GptTable {
  diskGuid: string;
  /** Sectors on the disk the table was made for or read from. */
  totalSectors: bigint;
  firstUsableLba: bigint;
  lastUsableLba: bigint;
  primaryEntriesLba: bigint;
  backupEntriesLba: bigint;
  backupHeaderLba: bigint;
  entryCount: number;
  entrySize: number;
  /** Used entries only, in entry-array order. */
  partitions: GptPartition[];
}

/** A disk to read from or write to: a path (file or block device) or an open handle. */
export type DiskTarget = string | FileHandle;

export const ZERO_GUID = '00000000-0000-0000-0000-000000000000';

// ---------------------------------------------------------------------------------------------
// GUIDs: text form is lowercase; on disk the first three fields are little-endian.

const GUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function normalizeGuid(guid: string): string {
  const lower = guid.toLowerCase();
  if (!GUID_PATTERN.test(lower)) {
    throw new BrlError(`"${guid}" is not a GUID`, { exitCode: ExitCode.badInput, code: 'BAD_GUID', hint: 'write it as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx' });
  }
  return lower;
}

export function guidToBytes(guid: string): Buffer {
  const hex = normalizeGuid(guid).replaceAll('-', '');
  const raw = Buffer.from(hex, 'hex');
  const out = Buffer.from(raw);
  out.writeUInt32LE(raw.readUInt32BE(0), 0);
  out.writeUInt16LE(raw.readUInt16BE(4), 4);
  out.writeUInt16LE(raw.readUInt16BE(6), 6);
  return out;
}

export function guidFromBytes(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, 16);
  const raw = Buffer.alloc(16);
  raw.writeUInt32BE(b.readUInt32LE(0), 0);
  raw.writeUInt16BE(b.readUInt16LE(4), 4);
  raw.writeUInt16BE(b.readUInt16LE(6), 6);
  b.copy(raw, 8, 8, 16);
  const h = raw.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ---------------------------------------------------------------------------------------------
// Building and serializing.

export interface NewPartition {
  number?: number;
  typeGuid: string;
  uniqueGuid: string;
  firstLba: bigint;
  lastLba: bigint;
  attributes?: bigint;
  name?: string;
}

/** A standard table for a disk of `totalSectors` 512-byte sectors (entries at LBA 2, backup at the end). */
export function createGptTable(options: { diskGuid: string; totalSectors: bigint; partitions: NewPartition[] }): GptTable {
  const { totalSectors } = options;
  const backupHeaderLba = totalSectors - 1n;
  const backupEntriesLba = backupHeaderLba - BigInt(GPT_ENTRY_SECTORS);
  const table: GptTable = {
    diskGuid: normalizeGuid(options.diskGuid),
    totalSectors,
    firstUsableLba: 2n + BigInt(GPT_ENTRY_SECTORS),
    lastUsableLba: backupEntriesLba - 1n,
    primaryEntriesLba: 2n,
    backupEntriesLba,
    backupHeaderLba,
    entryCount: GPT_ENTRY_COUNT,
    entrySize: GPT_ENTRY_SIZE,
    partitions: options.partitions.map((partition, index) => ({
      number: partition.number ?? index + 1,
      typeGuid: normalizeGuid(partition.typeGuid),
      uniqueGuid: normalizeGuid(partition.uniqueGuid),
      firstLba: partition.firstLba,
      lastLba: partition.lastLba,
      attributes: partition.attributes ?? 0n,
      name: partition.name ?? '',
    })),
  };
  const problems = tableProblems(table);
  if (problems.length > 0) throw new Error(`invalid GPT: ${problems.join('; ')}`);
  return table;
}

/** The entry array bytes (entryCount × entrySize). */
export function serializeEntries(table: GptTable): Buffer {
  const entries = Buffer.alloc(table.entryCount * table.entrySize);
  for (const partition of table.partitions) {
    const at = (partition.number - 1) * table.entrySize;
    guidToBytes(partition.typeGuid).copy(entries, at);
    guidToBytes(partition.uniqueGuid).copy(entries, at + 16);
    entries.writeBigUInt64LE(partition.firstLba, at + 32);
    entries.writeBigUInt64LE(partition.lastLba, at + 40);
    entries.writeBigUInt64LE(BigInt.asUintN(64, partition.attributes), at + 48);
    const name = Buffer.from(partition.name, 'utf16le');
    if (name.length > NAME_UNITS * 2) throw new Error(`GPT partition name "${partition.name}" exceeds ${NAME_UNITS} UTF-16 units`);
    name.copy(entries, at + 56);
  }
  return entries;
}

/** One 512-byte header sector; `backup` selects the copy at the end of the disk. */
export function serializeHeader(table: GptTable, entries: Buffer, backup: boolean): Buffer {
  const header = Buffer.alloc(SECTOR_SIZE);
  header.write(SIGNATURE, 0, 'latin1');
  header.writeUInt32LE(REVISION, 8);
  header.writeUInt32LE(HEADER_SIZE, 12);
  header.writeBigUInt64LE(backup ? table.backupHeaderLba : 1n, 24);
  header.writeBigUInt64LE(backup ? 1n : table.backupHeaderLba, 32);
  header.writeBigUInt64LE(table.firstUsableLba, 40);
  header.writeBigUInt64LE(table.lastUsableLba, 48);
  guidToBytes(table.diskGuid).copy(header, 56);
  header.writeBigUInt64LE(backup ? table.backupEntriesLba : table.primaryEntriesLba, 72);
  header.writeUInt32LE(table.entryCount, 80);
  header.writeUInt32LE(table.entrySize, 84);
  header.writeUInt32LE(crc32(entries), 88);
  header.writeUInt32LE(crc32(header.subarray(0, HEADER_SIZE)), 16);
  return header;
}

/**
 * The protective MBR sector: one 0xEE partition covering the disk. `bootCode` (the first 440
 * bytes of the existing sector, e.g. GRUB's boot.img on x86_64) is kept when given.
 */
export function serializeProtectiveMbr(totalSectors: bigint, bootCode?: Uint8Array): Buffer {
  const mbr = Buffer.alloc(SECTOR_SIZE);
  if (bootCode) Buffer.from(bootCode.buffer, bootCode.byteOffset, Math.min(440, bootCode.length)).copy(mbr, 0);
  const entry = 446;
  mbr[entry] = 0x00;
  mbr.set([0x00, 0x02, 0x00], entry + 1); // CHS of LBA 1
  mbr[entry + 4] = 0xee;
  mbr.set([0xff, 0xff, 0xff], entry + 5);
  mbr.writeUInt32LE(1, entry + 8);
  const size = totalSectors - 1n;
  mbr.writeUInt32LE(size > 0xffffffffn ? 0xffffffff : Number(size), entry + 12);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  return mbr;
}

// ---------------------------------------------------------------------------------------------
// Parsing.

interface ParsedHeader {
  myLba: bigint;
  alternateLba: bigint;
  firstUsableLba: bigint;
  lastUsableLba: bigint;
  diskGuid: string;
  entriesLba: bigint;
  entryCount: number;
  entrySize: number;
  entriesCrc: number;
}

/** The header in `sector`, or a reason it is not a valid header. */
export function parseHeader(sector: Buffer): ParsedHeader | string {
  if (sector.toString('latin1', 0, 8) !== SIGNATURE) return 'no "EFI PART" signature';
  const headerSize = sector.readUInt32LE(12);
  if (headerSize < HEADER_SIZE || headerSize > sector.length) return `header size ${headerSize} is invalid`;
  const copy = Buffer.from(sector.subarray(0, headerSize));
  const stored = copy.readUInt32LE(16);
  copy.writeUInt32LE(0, 16);
  const computed = crc32(copy);
  if (stored !== computed) return `header CRC32 is ${hex32(stored)}, computed ${hex32(computed)}`;
  const entrySize = sector.readUInt32LE(84);
  if (entrySize < 128 || entrySize % 8 !== 0) return `entry size ${entrySize} is invalid`;
  return {
    myLba: sector.readBigUInt64LE(24),
    alternateLba: sector.readBigUInt64LE(32),
    firstUsableLba: sector.readBigUInt64LE(40),
    lastUsableLba: sector.readBigUInt64LE(48),
    diskGuid: guidFromBytes(sector.subarray(56, 72)),
    entriesLba: sector.readBigUInt64LE(72),
    entryCount: sector.readUInt32LE(80),
    entrySize,
    entriesCrc: sector.readUInt32LE(88),
  };
}

export function parseEntries(entries: Buffer, entryCount: number, entrySize: number): GptPartition[] {
  const partitions: GptPartition[] = [];
  for (let index = 0; index < entryCount; index++) {
    const at = index * entrySize;
    const typeBytes = entries.subarray(at, at + 16);
    if (typeBytes.every((byte) => byte === 0)) continue;
    const nameBytes = entries.subarray(at + 56, at + 56 + NAME_UNITS * 2);
    let nameEnd = 0;
    while (nameEnd < nameBytes.length && nameBytes.readUInt16LE(nameEnd) !== 0) nameEnd += 2;
    partitions.push({
      number: index + 1,
      typeGuid: guidFromBytes(typeBytes),
      uniqueGuid: guidFromBytes(entries.subarray(at + 16, at + 32)),
      firstLba: entries.readBigUInt64LE(at + 32),
      lastLba: entries.readBigUInt64LE(at + 40),
      attributes: entries.readBigUInt64LE(at + 48),
      name: nameBytes.toString('utf16le', 0, nameEnd),
    });
  }
  return partitions;
}

/** Structural problems of a table: overlaps, partitions outside the usable range, bad numbers. */
export function tableProblems(table: GptTable): string[] {
  const problems: string[] = [];
  const seen = new Set<number>();
  for (const partition of table.partitions) {
    const label = `partition ${partition.number}${partition.name ? ` (${partition.name})` : ''}`;
    if (partition.number < 1 || partition.number > table.entryCount) problems.push(`${label}: number outside 1..${table.entryCount}`);
    if (seen.has(partition.number)) problems.push(`${label}: number used twice`);
    seen.add(partition.number);
    if (partition.lastLba < partition.firstLba) problems.push(`${label}: ends (LBA ${partition.lastLba}) before it starts (LBA ${partition.firstLba})`);
    if (partition.firstLba < table.firstUsableLba || partition.lastLba > table.lastUsableLba) {
      problems.push(`${label}: LBA ${partition.firstLba}–${partition.lastLba} outside the usable range ${table.firstUsableLba}–${table.lastUsableLba}`);
    }
  }
  const sorted = [...table.partitions].sort((a, b) => (a.firstLba < b.firstLba ? -1 : 1));
  for (let index = 1; index < sorted.length; index++) {
    const previous = sorted[index - 1]!;
    const current = sorted[index]!;
    if (current.firstLba <= previous.lastLba) problems.push(`partitions ${previous.number} and ${current.number} overlap`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Disk I/O.

async function withHandle<T>(target: DiskTarget, flags: string, action: (handle: FileHandle) => Promise<T>): Promise<T> {
  if (typeof target !== 'string') return action(target);
  let handle: FileHandle;
  try {
    handle = await open(target, flags);
  } catch (error) {
    throw fileError(error, target, { what: 'disk' }) ?? error;
  }
  try {
    if ((await handle.stat()).isDirectory()) {
      throw new BrlError(`disk ${target} is a directory, not a disk image or block device`, { exitCode: ExitCode.badInput, code: 'IS_A_DIRECTORY' });
    }
    return await action(handle);
  } finally {
    await handle.close();
  }
}

async function readAt(handle: FileHandle, lba: bigint, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, Number(lba) * SECTOR_SIZE);
  return bytesRead === length ? buffer : buffer.subarray(0, bytesRead);
}

async function writeAt(handle: FileHandle, lba: bigint, data: Buffer): Promise<void> {
  const { bytesWritten } = await handle.write(data, 0, data.length, Number(lba) * SECTOR_SIZE);
  if (bytesWritten !== data.length) throw new Error(`short write at LBA ${lba}`);
}

/** Size in bytes of a regular file or block device. */
export async function diskSizeBytes(path: string): Promise<bigint> {
  const info = await stat(path, { bigint: true });
  if (!info.isBlockDevice()) return info.size;
  const major = info.rdev >> 8n & 0xfffn;
  const minor = (info.rdev & 0xffn) | ((info.rdev >> 12n) & ~0xffn);
  const sectors = (await readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8')).trim();
  return BigInt(sectors) * 512n;
}

export interface GptCopyState {
  valid: boolean;
  /** Why this copy is unusable, when it is. */
  problem?: string;
}

export interface GptReadResult {
  table: GptTable;
  /** Which copy the table came from (the primary unless it is damaged). */
  source: 'primary' | 'backup';
  primary: GptCopyState;
  backup: GptCopyState;
  protectiveMbr: boolean;
  /** Everything wrong with the disk's tables; empty for a healthy disk. */
  problems: string[];
}

interface CopyRead {
  header?: ParsedHeader;
  entries?: Buffer;
  problem?: string;
}

type ReadAt = (lba: bigint, length: number) => Promise<Buffer>;

async function readCopy(readAt: ReadAt, headerLba: bigint): Promise<CopyRead> {
  const sector = await readAt(headerLba, SECTOR_SIZE);
  if (sector.length < SECTOR_SIZE) return { problem: `no header sector at LBA ${headerLba}` };
  const header = parseHeader(sector);
  if (typeof header === 'string') return { problem: `header at LBA ${headerLba}: ${header}` };
  if (header.myLba !== headerLba) return { problem: `header at LBA ${headerLba} says it is at LBA ${header.myLba}` };
  const entries = await readAt(header.entriesLba, header.entryCount * header.entrySize);
  if (entries.length < header.entryCount * header.entrySize) return { header, problem: `entry array at LBA ${header.entriesLba} is cut short` };
  const crc = crc32(entries);
  if (crc !== header.entriesCrc) {
    return { header, entries, problem: `entry array CRC32 is ${hex32(crc)}, header says ${hex32(header.entriesCrc)}` };
  }
  return { header, entries };
}

/**
 * Reads a disk's GPT. The primary copy wins when valid (as GRUB, the kernel and sgdisk do);
 * otherwise the backup, found through the primary's pointer or at the last sector. Reads a path, an
 * open handle, or any `DiskReader` (an `.img.lz4` read in place).
 */
export async function readGpt(target: DiskTarget | DiskReader): Promise<GptReadResult> {
  if (typeof target !== 'string' && 'sizeBytes' in target) {
    return readGptFrom((lba, length) => target.read(Number(lba) * SECTOR_SIZE, length), BigInt(target.sizeBytes), target.name);
  }
  return withHandle(target, 'r', async (handle) => {
    const sizeBytes = typeof target === 'string' ? await diskSizeBytes(target) : (await handle.stat({ bigint: true })).size;
    return readGptFrom((lba, length) => readAt(handle, lba, length), sizeBytes, typeof target === 'string' ? target : 'disk');
  });
}

async function readGptFrom(readAt: ReadAt, sizeBytes: bigint, diskName: string): Promise<GptReadResult> {
  const mbr = await readAt(0n, SECTOR_SIZE);
  const protectiveMbr = mbr.length === SECTOR_SIZE && mbr[510] === 0x55 && mbr[511] === 0xaa && [0, 1, 2, 3].some((i) => mbr[446 + i * 16 + 4] === 0xee);
  const primary = await readCopy(readAt, 1n);
  // An open handle on a block device reports size 0; the primary's backup pointer then sizes the disk.
  const totalSectors = sizeBytes > 0n ? sizeBytes / BigInt(SECTOR_SIZE) : (primary.header?.alternateLba ?? 0n) + 1n;
  // A file shorter than one sector has no last sector; sector 0 then stands in and fails as a header.
  const lastLba = totalSectors > 0n ? totalSectors - 1n : 0n;
  const backupLba = primary.header && primary.header.alternateLba < totalSectors ? primary.header.alternateLba : lastLba;
  const backup = await readCopy(readAt, backupLba);
  const problems: string[] = [];
  if (!protectiveMbr) problems.push('no protective MBR (0xEE partition) in sector 0');
  if (primary.problem) problems.push(`primary GPT: ${primary.problem}`);
  if (backup.problem) problems.push(`backup GPT: ${backup.problem}`);
  const chosen = primary.problem === undefined ? primary : backup.problem === undefined ? backup : undefined;
  if (!chosen?.header || !chosen.entries) {
    throw new BrlError(`${diskName} has no valid GPT (${problems.join('; ')})`, {
      exitCode: ExitCode.verifyFailed,
      code: 'NO_GPT',
      hint: 'check that the path is a whole disk image (raw or .img.lz4), not a partition image',
    });
  }
  const header = chosen.header;
  const table: GptTable = {
    diskGuid: header.diskGuid,
    totalSectors,
    firstUsableLba: header.firstUsableLba,
    lastUsableLba: header.lastUsableLba,
    primaryEntriesLba: chosen === primary ? header.entriesLba : primary.header?.entriesLba ?? 2n,
    backupEntriesLba: chosen === backup ? header.entriesLba : backup.header?.entriesLba ?? backupLba - BigInt(GPT_ENTRY_SECTORS),
    backupHeaderLba: chosen === primary ? header.alternateLba : header.myLba,
    entryCount: header.entryCount,
    entrySize: header.entrySize,
    partitions: parseEntries(chosen.entries, header.entryCount, header.entrySize),
  };
  if (primary.problem === undefined && backup.problem === undefined) {
    problems.push(...copyDifferences(primary.header!, primary.entries!, backup.header!, backup.entries!));
  }
  if (table.backupHeaderLba !== totalSectors - 1n) {
    problems.push(`backup header is at LBA ${table.backupHeaderLba}, not at the last sector ${totalSectors - 1n}`);
  }
  problems.push(...tableProblems(table));
  return {
    table,
    source: chosen === primary ? 'primary' : 'backup',
    primary: primary.problem === undefined ? { valid: true } : { valid: false, problem: primary.problem },
    backup: backup.problem === undefined ? { valid: true } : { valid: false, problem: backup.problem },
    protectiveMbr,
    problems,
  };
}

function copyDifferences(primary: ParsedHeader, primaryEntries: Buffer, backup: ParsedHeader, backupEntries: Buffer): string[] {
  const problems: string[] = [];
  if (primary.alternateLba !== backup.myLba) problems.push(`primary header points to a backup at LBA ${primary.alternateLba}, found it at ${backup.myLba}`);
  if (primary.diskGuid !== backup.diskGuid) problems.push('primary and backup headers name different disk GUIDs');
  if (primary.firstUsableLba !== backup.firstUsableLba || primary.lastUsableLba !== backup.lastUsableLba) {
    problems.push('primary and backup headers disagree on the usable range');
  }
  if (!primaryEntries.equals(backupEntries)) problems.push('primary and backup entry arrays differ');
  return problems;
}

/**
 * Writes both GPT copies (entry arrays and headers; never sector 0). Order, chosen so that an
 * interrupted write leaves a bootable disk: backup entries, backup header, flush, then primary
 * entries, primary header, flush. Until the primary header lands, GRUB (which reads the primary)
 * and the kernel see the complete old table; a torn primary fails its CRC and every reader falls
 * back to the already complete new backup. A header is always written after its entries, so a
 * header never vouches for entries that are not on disk.
 */
export async function writeGpt(target: DiskTarget, table: GptTable): Promise<void> {
  const problems = tableProblems(table);
  if (problems.length > 0) throw new Error(`refusing to write an invalid GPT: ${problems.join('; ')}`);
  const entries = serializeEntries(table);
  await withHandle(target, 'r+', async (handle) => {
    await writeAt(handle, table.backupEntriesLba, entries);
    await writeAt(handle, table.backupHeaderLba, serializeHeader(table, entries, true));
    await handle.sync();
    await writeAt(handle, table.primaryEntriesLba, entries);
    await writeAt(handle, 1n, serializeHeader(table, entries, false));
    await handle.sync();
  });
}

/** Writes the protective MBR into sector 0, keeping any boot code already in its first 440 bytes. */
export async function writeProtectiveMbr(target: DiskTarget, table: GptTable): Promise<void> {
  await withHandle(target, 'r+', async (handle) => {
    const existing = await readAt(handle, 0n, 440);
    await writeAt(handle, 0n, serializeProtectiveMbr(table.totalSectors, existing));
  });
}

/** A copy of `table` with partition `number`'s attributes replaced. */
export function withAttributes(table: GptTable, number: number, attributes: bigint): GptTable {
  if (!table.partitions.some((partition) => partition.number === number)) throw new Error(`no partition ${number} in the GPT`);
  return {
    ...table,
    partitions: table.partitions.map((partition) => (partition.number === number ? { ...partition, attributes } : partition)),
  };
}

export function partitionOffsetBytes(partition: GptPartition): number {
  return Number(partition.firstLba) * SECTOR_SIZE;
}

export function partitionSizeBytes(partition: GptPartition): number {
  return Number(partition.lastLba - partition.firstLba + 1n) * SECTOR_SIZE;
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
