// Finds and checks the disk images a VM boots: a variant's latest build or a given file, its data
// disk, its architecture and whether it carries the API bridge.
import { existsSync } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { BrlError, ExitCode, fileError, isBrlError } from '../core/errors.ts';
import { readGpt } from '../image/gpt.ts';
import { readExt4File } from '../image/ext4-read.ts';
import { handleReader } from '../image/image-reader.ts';
import { PARTITION_TYPE } from '../image/layout.ts';
import { readBuildManifest, type BuildManifest } from '../variant/build-manifest.ts';
import type { Architecture } from '../variant/definition.ts';

export type DiskFormat = 'raw' | 'lz4' | 'qcow2';

export interface VmImage {
  osImage: string;
  osFormat: DiskFormat;
  dataImage?: string;
  dataFormat?: DiskFormat;
  /** From the build manifest, else from the kernel on BOOT-A; undefined when neither tells. */
  arch?: Architecture;
  apiBridge: boolean;
  variant?: string;
}

const LZ4_FRAME_MAGIC = 0x184d2204;
const QCOW2_MAGIC = 0x514649fb;

async function diskFormat(path: string): Promise<DiskFormat> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw fileError(error, path, { what: 'disk image' }) ?? error;
  }
  try {
    if ((await handle.stat()).isDirectory()) {
      throw new BrlError(`${path} is a directory, not a disk image`, { exitCode: ExitCode.badInput, code: 'IS_A_DIRECTORY' });
    }
    const head = Buffer.alloc(4);
    await handle.read(head, 0, 4, 0);
    if (head.readUInt32LE(0) === LZ4_FRAME_MAGIC) return 'lz4';
    if (head.readUInt32BE(0) === QCOW2_MAGIC) return 'qcow2';
    return 'raw';
  } finally {
    await handle.close();
  }
}

/** The latest build of `variant` for `arch` under `buildDir`. */
export async function variantImage(buildDir: string, variant: string, arch: Architecture): Promise<VmImage> {
  const dir = join(buildDir, 'images', `${arch}-${variant}`, 'latest');
  const manifest = await readBuildManifest(dir);
  if (manifest === undefined) {
    throw new BrlError(`variant ${variant} has no ${arch} build in ${dir}`, {
      hint: `build it first: brl build variant ${variant}${arch === 'x86_64' ? '' : ` --arch ${arch}`}`,
      exitCode: ExitCode.notFound,
      code: 'NO_BUILD',
    });
  }
  return imageFromManifest(dir, manifest, join(dir, manifest.disks.os.artifact));
}

async function imageFromManifest(dir: string, manifest: BuildManifest, osImage: string): Promise<VmImage> {
  const data = manifest.disks.data === undefined ? undefined : join(dir, manifest.disks.data.artifact);
  return {
    osImage,
    osFormat: await diskFormat(osImage),
    ...(data !== undefined && existsSync(data) ? { dataImage: data, dataFormat: await diskFormat(data) } : {}),
    arch: manifest.arch,
    apiBridge: manifest.imageFeatures['api-bridge'] === true,
    variant: manifest.variant,
  };
}

/**
 * A disk image given by path. When it is an artifact of a brl build, the build manifest beside it
 * gives the data disk, the arch and the features; otherwise it is booted alone and its arch read
 * from the kernel on BOOT-A once it is raw (see `kernelArch`).
 */
export async function imageAtPath(path: string): Promise<VmImage> {
  const format = await diskFormat(path);
  const real = await realpath(path);
  const manifest = await readBuildManifest(dirname(real));
  if (manifest !== undefined && basename(real) === manifest.disks.os.artifact) return imageFromManifest(dirname(real), manifest, path);
  return { osImage: path, osFormat: format, apiBridge: false };
}

/**
 * Checks a raw disk: a GPT whose partitions lie inside the file, with a BOOT partition. Returns what
 * the kernel on BOOT-A says of its arch (undefined arch: read, but of no kind `kernelArch` knows), or
 * undefined when there is no kernel it can read.
 */
export async function checkRawDisk(rawPath: string, shownPath: string): Promise<{ arch: Architecture | undefined } | undefined> {
  const table = await readGpt(rawPath).then(
    (gpt) => gpt.table,
    (error: unknown) => {
      if (isBrlError(error) && error.code === 'NO_GPT') {
        throw new BrlError(`${shownPath} is not a GPT disk image`, {
          hint: 'brl vm run boots the OS disk of a brl build (build/images/<arch>-<variant>/latest/)',
          exitCode: ExitCode.badInput,
          code: 'NOT_GPT',
        });
      }
      throw error;
    },
  );
  const { size } = await stat(rawPath);
  const last = table.partitions.reduce((end, partition) => (partition.lastLba > end ? partition.lastLba : end), 0n);
  if ((last + 1n) * 512n > BigInt(size)) {
    throw new BrlError(`${shownPath} is truncated: its partitions end at byte ${(last + 1n) * 512n} but the disk holds ${size} bytes`, {
      hint: 'copy or decompress the image again',
      exitCode: ExitCode.badInput,
      code: 'TRUNCATED_IMAGE',
    });
  }
  const boot = table.partitions.find((partition) => partition.typeGuid === PARTITION_TYPE.boot);
  if (boot === undefined) {
    throw new BrlError(`${shownPath} has no BOOT partition (type ${PARTITION_TYPE.boot})`, {
      exitCode: ExitCode.badInput,
      code: 'NOT_A_BRL_IMAGE',
    });
  }
  const handle = await open(rawPath, 'r');
  try {
    const sizeBytes = Number(boot.lastLba - boot.firstLba + 1n) * 512;
    // A BOOT this reader cannot read leaves the arch unknown; QEMU then boots what it was told.
    const kernel = await readExt4File(handleReader(handle), Number(boot.firstLba) * 512, '/vmlinuz', shownPath, { maxBytes: sizeBytes }).catch(() => undefined);
    return kernel === undefined ? undefined : { arch: kernelArch(kernel) };
  } finally {
    await handle.close();
  }
}

const PE_MACHINE: Record<number, Architecture> = { 0x8664: 'x86_64', 0xaa64: 'aarch64' };
/** Enough of a compressed kernel to hold the headers of what it unpacks to. */
const GZIP_PREFIX_BYTES = 64 * 1024;

/**
 * The arch a kernel image is built for, from its headers: an x86 bzImage (`HdrS` at 0x202), an arm64
 * Image (`ARM\x64` at 0x38), either of them gzip'd (Debian's unsigned arm64 vmlinuz), or any EFI PE
 * image by its COFF machine type — the EFI-stub kernels brl packages for both arches, and EFI zboot
 * images (`MZ`, `zimg`), whose PE header names the arch of the kernel they unpack. Undefined when
 * none of these.
 */
export function kernelArch(kernel: Buffer): Architecture | undefined {
  if (kernel[0] === 0x1f && kernel[1] === 0x8b) {
    let head: Buffer;
    try {
      // A prefix: SYNC_FLUSH returns what it inflates instead of failing on the missing end.
      head = gunzipSync(kernel.subarray(0, GZIP_PREFIX_BYTES), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    } catch {
      return undefined;
    }
    return head[0] === 0x1f && head[1] === 0x8b ? undefined : kernelArch(head);
  }
  if (kernel.subarray(0x202, 0x206).toString('latin1') === 'HdrS') return 'x86_64';
  if (kernel.subarray(0x38, 0x3c).toString('latin1') === 'ARM\x64') return 'aarch64';
  if (kernel.length >= 0x40 && kernel.subarray(0, 2).toString('latin1') === 'MZ') {
    const pe = kernel.readUInt32LE(0x3c);
    if (pe + 6 <= kernel.length && kernel.subarray(pe, pe + 4).toString('latin1') === 'PE\0\0') return PE_MACHINE[kernel.readUInt16LE(pe + 4)];
  }
  return undefined;
}
