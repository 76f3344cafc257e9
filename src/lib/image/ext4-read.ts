// Reads small files out of an ext4 filesystem inside a disk (BOOT's grub.cfg, ROOT's os-release) natively: no mount, no debugfs.
import { BrlError, ExitCode } from '../core/errors.ts';
import type { BlockReader } from './image-reader.ts';

const EXT4_MAGIC = 0xef53;
const INCOMPAT_64BIT = 0x80;
const INODE_FLAG_EXTENTS = 0x80000;
const INODE_FLAG_INLINE_DATA = 0x10000000;
const EXTENT_MAGIC = 0xf30a;
const ROOT_INODE = 2;
/** grub.cfg and os-release are a few hundred bytes; anything this large is not one. */
const MAX_FILE_BYTES = 1024 * 1024;

interface Filesystem {
  reader: BlockReader;
  offset: number;
  blockSize: number;
  inodesPerGroup: number;
  inodeSize: number;
  descriptorSize: number;
  is64Bit: boolean;
  source: string;
}

function corrupt(fs: Pick<Filesystem, 'source'>, message: string): BrlError {
  return new BrlError(`${fs.source}: ${message}`, { exitCode: ExitCode.verifyFailed, code: 'BAD_EXT4' });
}

function readBytes(fs: Pick<Filesystem, 'reader' | 'offset'>, position: number, length: number): Promise<Buffer> {
  return fs.reader.read(fs.offset + position, length);
}

async function openFilesystem(reader: BlockReader, offset: number, source: string): Promise<Filesystem> {
  const superblock = await readBytes({ reader, offset }, 1024, 1024);
  if (superblock.length < 1024 || superblock.readUInt16LE(56) !== EXT4_MAGIC) {
    throw corrupt({ source }, 'no ext4 superblock');
  }
  const incompat = superblock.readUInt32LE(96);
  const is64Bit = (incompat & INCOMPAT_64BIT) !== 0;
  const revision = superblock.readUInt32LE(76);
  return {
    reader,
    offset,
    blockSize: 1024 << superblock.readUInt32LE(24),
    inodesPerGroup: superblock.readUInt32LE(40),
    inodeSize: revision === 0 ? 128 : superblock.readUInt16LE(88),
    descriptorSize: is64Bit ? Math.max(32, superblock.readUInt16LE(254)) : 32,
    is64Bit,
    source,
  };
}

async function readInode(fs: Filesystem, inode: number): Promise<Buffer> {
  const group = Math.floor((inode - 1) / fs.inodesPerGroup);
  const index = (inode - 1) % fs.inodesPerGroup;
  const descriptorTable = (fs.blockSize === 1024 ? 2 : 1) * fs.blockSize;
  const descriptor = await readBytes(fs, descriptorTable + group * fs.descriptorSize, fs.descriptorSize);
  const tableLo = descriptor.readUInt32LE(8);
  const tableHi = fs.is64Bit && fs.descriptorSize >= 64 ? descriptor.readUInt32LE(0x28) : 0;
  const table = tableHi * 2 ** 32 + tableLo;
  return readBytes(fs, table * fs.blockSize + index * fs.inodeSize, fs.inodeSize);
}

/** Physical block numbers of a file's logical blocks 0..count-1 (extent trees and classic block maps). */
async function fileBlocks(fs: Filesystem, inode: Buffer, count: number): Promise<number[]> {
  const flags = inode.readUInt32LE(32);
  const iBlock = inode.subarray(40, 100);
  const blocks: number[] = new Array<number>(count).fill(0);
  if ((flags & INODE_FLAG_EXTENTS) !== 0) {
    const walk = async (node: Buffer, depth: number): Promise<void> => {
      if (node.readUInt16LE(0) !== EXTENT_MAGIC) throw corrupt(fs, 'bad extent header');
      const entries = node.readUInt16LE(2);
      for (let entry = 0; entry < entries; entry++) {
        const at = 12 + entry * 12;
        if (node.readUInt16LE(6) === 0) {
          const logical = node.readUInt32LE(at);
          let length = node.readUInt16LE(at + 4);
          if (length > 32768) length -= 32768;
          const start = node.readUInt16LE(at + 6) * 2 ** 32 + node.readUInt32LE(at + 8);
          for (let i = 0; i < length && logical + i < count; i++) blocks[logical + i] = start + i;
        } else {
          if (depth > 5) throw corrupt(fs, 'extent tree too deep');
          const leaf = node.readUInt16LE(at + 8) * 2 ** 32 + node.readUInt32LE(at + 4);
          await walk(await readBytes(fs, leaf * fs.blockSize, fs.blockSize), depth + 1);
        }
      }
    };
    await walk(iBlock, 0);
    return blocks;
  }
  const perBlock = fs.blockSize / 4;
  const indirect = async (block: number, level: number, firstLogical: number): Promise<void> => {
    if (block === 0 || firstLogical >= count) return;
    const table = await readBytes(fs, block * fs.blockSize, fs.blockSize);
    const span = perBlock ** level;
    for (let i = 0; i < perBlock; i++) {
      const logical = firstLogical + i * span;
      if (logical >= count) return;
      const child = table.readUInt32LE(i * 4);
      if (level === 0) blocks[logical] = child;
      else await indirect(child, level - 1, logical);
    }
  };
  for (let i = 0; i < 12 && i < count; i++) blocks[i] = iBlock.readUInt32LE(i * 4);
  await indirect(iBlock.readUInt32LE(48), 0, 12);
  await indirect(iBlock.readUInt32LE(52), 1, 12 + perBlock);
  await indirect(iBlock.readUInt32LE(56), 2, 12 + perBlock + perBlock ** 2);
  return blocks;
}

async function readWholeInode(fs: Filesystem, inode: Buffer): Promise<Buffer> {
  const size = inode.readUInt32LE(108) * 2 ** 32 + inode.readUInt32LE(4);
  if (size > MAX_FILE_BYTES) throw corrupt(fs, `file of ${size} bytes is too large to read here`);
  if ((inode.readUInt32LE(32) & INODE_FLAG_INLINE_DATA) !== 0) return Buffer.from(inode.subarray(40, 40 + Math.min(size, 60)));
  const count = Math.ceil(size / fs.blockSize);
  const parts: Buffer[] = [];
  for (const block of await fileBlocks(fs, inode, count)) {
    parts.push(block === 0 ? Buffer.alloc(fs.blockSize) : await readBytes(fs, block * fs.blockSize, fs.blockSize));
  }
  return Buffer.concat(parts).subarray(0, size);
}

async function lookup(fs: Filesystem, directory: Buffer, name: string): Promise<number | undefined> {
  const data = await readWholeInode(fs, directory);
  for (let block = 0; block < data.length; block += fs.blockSize) {
    let at = block;
    while (at + 8 <= Math.min(block + fs.blockSize, data.length)) {
      const inode = data.readUInt32LE(at);
      const recordLength = data.readUInt16LE(at + 4);
      const nameLength = data[at + 6]!;
      if (recordLength < 8) break;
      if (inode !== 0 && data.toString('latin1', at + 8, at + 8 + nameLength) === name) return inode;
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
 * The contents of `path` (absolute, e.g. `/grub/grub.cfg`; symlinks are not followed) in the ext4
 * filesystem at byte `offset` of `reader`, or undefined when it does not exist. `source` names the
 * filesystem in errors (`BAD_EXT4`).
 */
export async function readExt4File(reader: BlockReader, offset: number, path: string, source: string): Promise<Buffer | undefined> {
  const fs = await openFilesystem(reader, offset, source);
  let inode = await readInode(fs, ROOT_INODE);
  for (const part of path.split('/').filter((segment) => segment !== '')) {
    const next = await lookup(fs, inode, part);
    if (next === undefined) return undefined;
    inode = await readInode(fs, next);
  }
  return readWholeInode(fs, inode);
}
