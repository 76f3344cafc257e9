// Reads files out of an ext4 filesystem inside a disk or an image in memory (BOOT's grub.cfg, kernel and signatures, ROOT's os-release) natively: no mount, no debugfs.
import { BrlError, ExitCode } from '../core/errors.ts';
import type { BlockReader } from './image-reader.ts';

const EXT4_MAGIC = 0xef53;
const ROOT_INODE = 2;
/** grub.cfg and os-release are a few hundred bytes; callers that read kernels pass their own bound. */
const DEFAULT_MAX_FILE_BYTES = 1024 * 1024;
/** A directory this large is not one of an OS image's. */
const MAX_DIRECTORY_BYTES = 16 * 1024 * 1024;

/** Incompatible features (superblock s_feature_incompat) whose files this reader reads correctly; any other is refused. */
const understoodIncompat = new Map<number, string>([
  [0x2, 'filetype'], [0x40, 'extent'], [0x80, '64bit'], [0x100, 'mmp'], [0x200, 'flex_bg'], [0x400, 'ea_inode'],
  [0x2000, 'csum_seed'], [0x4000, 'largedir'],
  // Per file: an inline-data or encrypted file is refused when it is read.
  [0x8000, 'inline_data'], [0x10000, 'encrypt'],
]);
const incompatNames = new Map<number, string>([
  [0x1, 'compression'], [0x4, 'needs_recovery'], [0x8, 'journal_dev'], [0x10, 'meta_bg'], [0x1000, 'dirdata'], [0x20000, 'casefold'],
]);
const inodeFlag = { encrypted: 0x800, extents: 0x80000, inlineData: 0x10000000, casefold: 0x40000000 } as const;
const fileType = { mask: 0xf000, directory: 0x4000, regular: 0x8000, symlink: 0xa000 } as const;
const EXTENT_MAGIC = 0xf30a;
/** The kernel's limit (EXT4_MAX_EXTENT_DEPTH). */
const MAX_EXTENT_DEPTH = 5;
/** An extent longer than this is uninitialized: allocated, but it reads as zeros. */
const MAX_INITIALIZED_EXTENT = 32768;

export interface Ext4ReadOptions {
  /** Refuse a file larger than this; default 1 MiB. */
  maxBytes?: number;
}

interface Filesystem {
  reader: BlockReader;
  offset: number;
  blockSize: number;
  blocksCount: number;
  firstDataBlock: number;
  inodesCount: number;
  inodesPerGroup: number;
  inodeSize: number;
  descriptorSize: number;
  is64Bit: boolean;
  source: string;
}

/** A run of a file's logical blocks: `physical` 0 with `zero` set for holes and uninitialized extents. */
interface Run {
  logical: number;
  physical: number;
  length: number;
  zero: boolean;
}

function refused(fs: Pick<Filesystem, 'source'>, message: string): BrlError {
  return new BrlError(`${fs.source}: ${message}`, { exitCode: ExitCode.verifyFailed, code: 'BAD_EXT4' });
}

async function readBytes(fs: Pick<Filesystem, 'reader' | 'offset' | 'source'>, position: number, length: number): Promise<Buffer> {
  const bytes = await fs.reader.read(fs.offset + position, length);
  if (bytes.length !== length) throw refused(fs, `the filesystem ends at byte ${position + bytes.length}, inside a structure at ${position}`);
  return bytes;
}

async function openFilesystem(reader: BlockReader, offset: number, source: string): Promise<Filesystem> {
  const superblock = await reader.read(offset + 1024, 1024);
  if (superblock.length < 1024 || superblock.readUInt16LE(56) !== EXT4_MAGIC) throw refused({ source }, 'no ext4 superblock');
  const incompat = superblock.readUInt32LE(96);
  for (let bit = 1; bit !== 0 && bit <= 0x80000000; bit = (bit << 1) >>> 0) {
    if ((incompat & bit) !== 0 && !understoodIncompat.has(bit)) {
      throw refused({ source }, `uses the ext4 feature ${incompatNames.get(bit) ?? `0x${bit.toString(16)}`}, which this reader does not read`);
    }
  }
  const is64Bit = (incompat & 0x80) !== 0;
  const logBlockSize = superblock.readUInt32LE(24);
  if (logBlockSize > 6) throw refused({ source }, `has a block size of 2^${10 + logBlockSize} bytes`);
  const blockSize = 1024 << logBlockSize;
  const revision = superblock.readUInt32LE(76);
  const inodeSize = revision === 0 ? 128 : superblock.readUInt16LE(88);
  if (inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) !== 0) throw refused({ source }, `has an inode size of ${inodeSize}`);
  const descriptorSize = is64Bit ? superblock.readUInt16LE(254) : 32;
  if (is64Bit && (descriptorSize < 64 || (descriptorSize & (descriptorSize - 1)) !== 0)) throw refused({ source }, `has a group descriptor size of ${descriptorSize}`);
  const inodesPerGroup = superblock.readUInt32LE(40);
  if (inodesPerGroup === 0) throw refused({ source }, 'has no inodes per group');
  return {
    reader,
    offset,
    blockSize,
    blocksCount: (is64Bit ? superblock.readUInt32LE(0x150) * 2 ** 32 : 0) + superblock.readUInt32LE(4),
    firstDataBlock: superblock.readUInt32LE(20),
    inodesCount: superblock.readUInt32LE(0),
    inodesPerGroup,
    inodeSize,
    descriptorSize,
    is64Bit,
    source,
  };
}

async function readInode(fs: Filesystem, inode: number): Promise<Buffer> {
  if (inode < 1 || inode > fs.inodesCount) throw refused(fs, `inode ${inode} is outside the filesystem's ${fs.inodesCount}`);
  const group = Math.floor((inode - 1) / fs.inodesPerGroup);
  const index = (inode - 1) % fs.inodesPerGroup;
  const descriptorTable = (fs.firstDataBlock + 1) * fs.blockSize;
  const descriptor = await readBytes(fs, descriptorTable + group * fs.descriptorSize, fs.descriptorSize);
  const tableHi = fs.is64Bit ? descriptor.readUInt32LE(0x28) : 0;
  const table = tableHi * 2 ** 32 + descriptor.readUInt32LE(8);
  if (table === 0 || table >= fs.blocksCount) throw refused(fs, `group ${group}'s inode table is at block ${table}, outside the filesystem`);
  return readBytes(fs, table * fs.blockSize + index * fs.inodeSize, fs.inodeSize);
}

function checkBlocks(fs: Filesystem, start: number, length: number, what: string): void {
  if (start === 0 || start + length > fs.blocksCount) throw refused(fs, `${what} points at blocks ${start}..${start + length - 1}, outside the filesystem's ${fs.blocksCount}`);
}

/** The runs of an extent tree, in logical order, for logical blocks below `count`. */
async function extentRuns(fs: Filesystem, root: Buffer, count: number): Promise<Run[]> {
  const runs: Run[] = [];
  const walk = async (node: Buffer, expectedDepth: number | undefined, what: string): Promise<void> => {
    if (node.readUInt16LE(0) !== EXTENT_MAGIC) throw refused(fs, `${what} has no extent header`);
    const entries = node.readUInt16LE(2);
    const depth = node.readUInt16LE(6);
    if (12 + entries * 12 > node.length) throw refused(fs, `${what} holds more extents than fit it`);
    if (depth > MAX_EXTENT_DEPTH || (expectedDepth !== undefined && depth !== expectedDepth)) throw refused(fs, `${what} has depth ${depth}`);
    for (let entry = 0; entry < entries; entry++) {
      const at = 12 + entry * 12;
      const logical = node.readUInt32LE(at);
      if (depth === 0) {
        const raw = node.readUInt16LE(at + 4);
        const uninitialized = raw > MAX_INITIALIZED_EXTENT;
        const length = uninitialized ? raw - MAX_INITIALIZED_EXTENT : raw;
        const start = node.readUInt16LE(at + 6) * 2 ** 32 + node.readUInt32LE(at + 8);
        if (logical >= count || length === 0) continue;
        checkBlocks(fs, start, length, `an extent of ${what}`);
        runs.push({ logical, physical: start, length: Math.min(length, count - logical), zero: uninitialized });
      } else {
        const child = node.readUInt16LE(at + 8) * 2 ** 32 + node.readUInt32LE(at + 4);
        checkBlocks(fs, child, 1, `an extent index of ${what}`);
        await walk(await readBytes(fs, child * fs.blockSize, fs.blockSize), depth - 1, `extent block ${child}`);
      }
    }
  };
  await walk(root, undefined, 'an inode\'s extent root');
  runs.sort((a, b) => a.logical - b.logical);
  for (let index = 1; index < runs.length; index++) {
    if (runs[index]!.logical < runs[index - 1]!.logical + runs[index - 1]!.length) throw refused(fs, 'a file\'s extents overlap');
  }
  return runs;
}

/** The runs of a classic block map (direct, indirect, double and triple indirect blocks), one block each. */
async function blockMapRuns(fs: Filesystem, iBlock: Buffer, count: number): Promise<Run[]> {
  const runs: Run[] = [];
  const add = (logical: number, physical: number) => {
    if (physical === 0) return;
    checkBlocks(fs, physical, 1, 'a block map');
    runs.push({ logical, physical, length: 1, zero: false });
  };
  const perBlock = fs.blockSize / 4;
  const indirect = async (block: number, level: number, firstLogical: number): Promise<void> => {
    if (block === 0 || firstLogical >= count) return;
    checkBlocks(fs, block, 1, 'an indirect block');
    const table = await readBytes(fs, block * fs.blockSize, fs.blockSize);
    const span = perBlock ** level;
    for (let i = 0; i < perBlock; i++) {
      const logical = firstLogical + i * span;
      if (logical >= count) return;
      const child = table.readUInt32LE(i * 4);
      if (level === 0) add(logical, child);
      else await indirect(child, level - 1, logical);
    }
  };
  for (let i = 0; i < 12 && i < count; i++) add(i, iBlock.readUInt32LE(i * 4));
  await indirect(iBlock.readUInt32LE(48), 0, 12);
  await indirect(iBlock.readUInt32LE(52), 1, 12 + perBlock);
  await indirect(iBlock.readUInt32LE(56), 2, 12 + perBlock + perBlock ** 2);
  return runs;
}

async function readWholeInode(fs: Filesystem, inode: Buffer, what: string, maxBytes: number): Promise<Buffer> {
  const flags = inode.readUInt32LE(32);
  if ((flags & inodeFlag.inlineData) !== 0) throw refused(fs, `${what} keeps its data inline in its inode, which this reader does not read`);
  if ((flags & inodeFlag.encrypted) !== 0) throw refused(fs, `${what} is encrypted`);
  const size = inode.readUInt32LE(108) * 2 ** 32 + inode.readUInt32LE(4);
  if (size > maxBytes) throw refused(fs, `${what} is ${size} bytes, more than the ${maxBytes} read here`);
  const count = Math.ceil(size / fs.blockSize);
  const iBlock = inode.subarray(40, 100);
  const runs = (flags & inodeFlag.extents) !== 0 ? await extentRuns(fs, iBlock, count) : await blockMapRuns(fs, iBlock, count);
  // Holes and uninitialized extents read as zeros, as the kernel gives them.
  const data = Buffer.alloc(count * fs.blockSize);
  for (const run of runs) {
    if (run.zero) continue;
    const bytes = await readBytes(fs, run.physical * fs.blockSize, run.length * fs.blockSize);
    bytes.copy(data, run.logical * fs.blockSize);
  }
  return data.subarray(0, size);
}

function kindOf(inode: Buffer): number {
  return inode.readUInt16LE(0) & fileType.mask;
}

/** Looks `name` up by scanning every directory block: an htree directory's index nodes read as empty entries, so the scan needs no hashing. */
async function lookup(fs: Filesystem, directory: Buffer, name: string, directoryPath: string): Promise<number | undefined> {
  if ((directory.readUInt32LE(32) & inodeFlag.casefold) !== 0) throw refused(fs, `${directoryPath} looks names up without case, which this reader does not do`);
  const data = await readWholeInode(fs, directory, directoryPath, MAX_DIRECTORY_BYTES);
  for (let block = 0; block < data.length; block += fs.blockSize) {
    const end = Math.min(block + fs.blockSize, data.length);
    let at = block;
    while (at < end) {
      if (at + 8 > end) throw refused(fs, `a directory entry of ${directoryPath} crosses its block's end`);
      const inode = data.readUInt32LE(at);
      const recordLength = data.readUInt16LE(at + 4);
      const nameLength = data[at + 6]!;
      if (recordLength < 8 || recordLength % 4 !== 0 || at + recordLength > end || 8 + nameLength > recordLength) {
        throw refused(fs, `a directory entry of ${directoryPath} has a record length of ${recordLength}`);
      }
      if (inode !== 0 && nameLength === Buffer.byteLength(name) && data.toString('utf8', at + 8, at + 8 + nameLength) === name) return inode;
      at += recordLength;
    }
  }
  return undefined;
}

/** Whether an ext4 superblock sits at byte `offset`. */
export async function isExt4(reader: BlockReader, offset: number): Promise<boolean> {
  const superblock = await reader.read(offset + 1024, 1024);
  return superblock.length === 1024 && superblock.readUInt16LE(56) === EXT4_MAGIC;
}

/**
 * The contents of the regular file `path` (absolute, e.g. `/grub/grub.cfg`; symlinks are not
 * followed) in the ext4 filesystem at byte `offset` of `reader`, or undefined when it does not
 * exist. Anything this reader does not understand (a feature, inline or encrypted data, a damaged
 * structure) is refused as `BAD_EXT4` naming `source`, never guessed at.
 */
export async function readExt4File(reader: BlockReader, offset: number, path: string, source: string, options: Ext4ReadOptions = {}): Promise<Buffer | undefined> {
  const fs = await openFilesystem(reader, offset, source);
  let inode = await readInode(fs, ROOT_INODE);
  let walked = '';
  for (const part of path.split('/').filter((segment) => segment !== '')) {
    if (kindOf(inode) !== fileType.directory) throw refused(fs, `${walked || '/'} is not a directory`);
    const next = await lookup(fs, inode, part, walked || '/');
    if (next === undefined) return undefined;
    inode = await readInode(fs, next);
    walked += `/${part}`;
  }
  const kind = kindOf(inode);
  if (kind === fileType.symlink) throw refused(fs, `${path} is a symbolic link, which this reader does not follow`);
  if (kind !== fileType.regular) throw refused(fs, `${path} is not a regular file`);
  return readWholeInode(fs, inode, path, options.maxBytes ?? DEFAULT_MAX_FILE_BYTES);
}
