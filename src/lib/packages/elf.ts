// A small ELF reader: just the headers, segments, dynamic entries and symbol names the hardening check needs.
import { open, type FileHandle } from 'node:fs/promises';

export const elfMagic = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

const ET_EXEC = 2;
const ET_DYN = 3;
const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const PT_GNU_STACK = 0x6474e551;
const PT_GNU_RELRO = 0x6474e552;
const PF_X = 1;
const DT_NULL = 0n;
const DT_STRTAB = 5n;
const DT_STRSZ = 10n;
const DT_BIND_NOW = 24n;
const DT_FLAGS = 30n;
const DT_FLAGS_1 = 0x6ffffffbn;
const DF_BIND_NOW = 0x8n;
const DF_1_NOW = 0x1n;
const DF_1_PIE = 0x08000000n;
const SHT_SYMTAB = 2;

export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;

/** Upper bound on any one table read, so a corrupt header cannot make us allocate gigabytes. */
const maxTableBytes = 256 * 1024 * 1024;

export interface ElfSegment {
  type: number;
  flags: number;
  offset: bigint;
  vaddr: bigint;
  fileSize: bigint;
}

export interface ElfInfo {
  /** ET_EXEC, ET_DYN, ET_REL, … */
  type: number;
  machine: number;
  is64: boolean;
  segments: ElfSegment[];
  hasInterpreter: boolean;
  hasDynamic: boolean;
  /** DT_FLAGS_1 (0 when absent). */
  flags1: bigint;
  /** Lazy binding is off: DT_BIND_NOW, DF_BIND_NOW or DF_1_NOW. */
  bindNow: boolean;
  /** Names in the dynamic string table, plus `.symtab`'s when that had no stack-protector symbol. */
  symbolNames: Set<string>;
}

/** True when the file starts with the ELF magic. */
export async function isElfFile(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    return bytesRead === 4 && head.equals(elfMagic);
  } finally {
    await handle.close();
  }
}

/** Reads what the hardening check needs with bounded positional reads; the file is never loaded whole. */
export async function readElf(path: string): Promise<ElfInfo> {
  const handle = await open(path, 'r');
  try {
    return await parse(handle, path);
  } finally {
    await handle.close();
  }
}

class Reader {
  readonly buffer: Buffer;
  readonly littleEndian: boolean;
  constructor(buffer: Buffer, littleEndian: boolean) {
    this.buffer = buffer;
    this.littleEndian = littleEndian;
  }
  u16(offset: number): number {
    return this.littleEndian ? this.buffer.readUInt16LE(offset) : this.buffer.readUInt16BE(offset);
  }
  u32(offset: number): number {
    return this.littleEndian ? this.buffer.readUInt32LE(offset) : this.buffer.readUInt32BE(offset);
  }
  u64(offset: number): bigint {
    return this.littleEndian ? this.buffer.readBigUInt64LE(offset) : this.buffer.readBigUInt64BE(offset);
  }
  /** A word: 8 bytes in ELF64, 4 in ELF32. */
  word(offset: number, is64: boolean): bigint {
    return is64 ? this.u64(offset) : BigInt(this.u32(offset));
  }
}

async function readAt(handle: FileHandle, path: string, offset: bigint, length: number): Promise<Buffer> {
  if (length < 0 || length > maxTableBytes) throw new Error(`${path}: ELF table of ${length} bytes is out of range`);
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, Number(offset));
  if (bytesRead !== length) throw new Error(`${path}: truncated ELF file (wanted ${length} bytes at ${offset})`);
  return buffer;
}

async function parse(handle: FileHandle, path: string): Promise<ElfInfo> {
  const ident = await readAt(handle, path, 0n, 64).catch(() => {
    throw new Error(`${path}: too short for an ELF header`);
  });
  if (!ident.subarray(0, 4).equals(elfMagic)) throw new Error(`${path}: not an ELF file`);
  const elfClass = ident[4];
  if (elfClass !== 1 && elfClass !== 2) throw new Error(`${path}: unknown ELF class ${elfClass}`);
  const is64 = elfClass === 2;
  const header = new Reader(ident, ident[5] !== 2);
  const type = header.u16(16);
  const machine = header.u16(18);
  const phoff = is64 ? header.u64(32) : BigInt(header.u32(28));
  const shoff = is64 ? header.u64(40) : BigInt(header.u32(32));
  const phentsize = header.u16(is64 ? 54 : 42);
  const phnum = header.u16(is64 ? 56 : 44);
  const shentsize = header.u16(is64 ? 58 : 46);
  const shnum = header.u16(is64 ? 60 : 48);

  const segments: ElfSegment[] = [];
  if (phnum > 0) {
    const table = new Reader(await readAt(handle, path, phoff, phentsize * phnum), header.littleEndian);
    for (let index = 0; index < phnum; index++) {
      const base = index * phentsize;
      segments.push(
        is64
          ? { type: table.u32(base), flags: table.u32(base + 4), offset: table.u64(base + 8), vaddr: table.u64(base + 16), fileSize: table.u64(base + 32) }
          : { type: table.u32(base), flags: table.u32(base + 24), offset: BigInt(table.u32(base + 4)), vaddr: BigInt(table.u32(base + 8)), fileSize: BigInt(table.u32(base + 16)) },
      );
    }
  }

  const info: ElfInfo = {
    type,
    machine,
    is64,
    segments,
    hasInterpreter: segments.some((segment) => segment.type === PT_INTERP),
    hasDynamic: false,
    flags1: 0n,
    bindNow: false,
    symbolNames: new Set(),
  };

  const dynamic = segments.find((segment) => segment.type === PT_DYNAMIC);
  if (dynamic !== undefined) {
    info.hasDynamic = true;
    const entrySize = is64 ? 16 : 8;
    const table = new Reader(await readAt(handle, path, dynamic.offset, Number(dynamic.fileSize)), header.littleEndian);
    let strtab: bigint | undefined;
    let strsz: bigint | undefined;
    for (let base = 0; base + entrySize <= table.buffer.length; base += entrySize) {
      const tag = table.word(base, is64);
      const value = table.word(base + entrySize / 2, is64);
      if (tag === DT_NULL) break;
      if (tag === DT_STRTAB) strtab = value;
      else if (tag === DT_STRSZ) strsz = value;
      else if (tag === DT_BIND_NOW) info.bindNow = true;
      else if (tag === DT_FLAGS && (value & DF_BIND_NOW) !== 0n) info.bindNow = true;
      else if (tag === DT_FLAGS_1) {
        info.flags1 = value;
        if ((value & DF_1_NOW) !== 0n) info.bindNow = true;
      }
    }
    if (strtab !== undefined && strsz !== undefined) {
      const offset = fileOffsetOf(segments, strtab);
      if (offset !== undefined) addNames(info.symbolNames, await readAt(handle, path, offset, Number(strsz)));
    }
  }
  // Static and static-pie binaries keep their symbol names only in .symtab (absent when stripped);
  // read it only when the dynamic names did not already answer the question.
  if (!hasStackProtector(info) && shnum > 0 && shoff > 0n) {
    const sections = new Reader(await readAt(handle, path, shoff, shentsize * shnum), header.littleEndian);
    const field = (index: number, offset64: number, offset32: number): bigint =>
      is64 ? sections.u64(index * shentsize + offset64) : BigInt(sections.u32(index * shentsize + offset32));
    for (let index = 0; index < shnum; index++) {
      if (sections.u32(index * shentsize + 4) !== SHT_SYMTAB) continue;
      const link = sections.u32(index * shentsize + (is64 ? 40 : 24));
      if (link >= shnum) continue;
      addNames(info.symbolNames, await readAt(handle, path, field(link, 24, 16), Number(field(link, 32, 20))));
    }
  }
  return info;
}

function fileOffsetOf(segments: readonly ElfSegment[], vaddr: bigint): bigint | undefined {
  const load = segments.find((segment) => segment.type === PT_LOAD && vaddr >= segment.vaddr && vaddr < segment.vaddr + segment.fileSize);
  return load === undefined ? undefined : vaddr - load.vaddr + load.offset;
}

function addNames(names: Set<string>, table: Buffer): void {
  for (const name of table.toString('latin1').split('\0')) if (name !== '') names.add(name);
}

export type ElfKind = 'executable' | 'shared-object';

/** Executables and shared objects are checked; relocatable objects (kernel modules, .o) and cores are not. */
export function elfKind(info: ElfInfo): ElfKind | undefined {
  if (info.type === ET_EXEC) return 'executable';
  if (info.type !== ET_DYN) return undefined;
  return info.hasInterpreter || (info.flags1 & DF_1_PIE) !== 0n ? 'executable' : 'shared-object';
}

/** Position independent: an executable that is ET_DYN. Shared objects always are. */
export function isPie(info: ElfInfo): boolean {
  return info.type === ET_DYN;
}

/** Full RELRO: a PT_GNU_RELRO segment and no lazy binding (a static binary has nothing to bind lazily). */
export function hasFullRelro(info: ElfInfo): boolean {
  return info.segments.some((segment) => segment.type === PT_GNU_RELRO) && (info.bindNow || !info.hasDynamic);
}

/** A PT_GNU_STACK segment without PF_X; without one the kernel may map an executable stack. */
export function hasNonExecutableStack(info: ElfInfo): boolean {
  const stack = info.segments.find((segment) => segment.type === PT_GNU_STACK);
  return stack !== undefined && (stack.flags & PF_X) === 0;
}

/** Symbols that code built with -fstack-protector* references (libc's canary check and guard). */
export const stackProtectorSymbols = ['__stack_chk_fail', '__stack_chk_guard', '__stack_chk_fail_local'] as const;

export function hasStackProtector(info: ElfInfo): boolean {
  return stackProtectorSymbols.some((name) => info.symbolNames.has(name));
}
