// Finds a variant's built disk images (build/images/<arch>-<variant>/latest/) and streams them as raw bytes.
import { spawn } from 'node:child_process';
import { accessSync, constants, createReadStream } from 'node:fs';
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { basename, delimiter, join } from 'node:path';
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';
import { buildDir } from '../core/paths.ts';
import { createLz4Decoder } from '../image/lz4.ts';

export interface DiskImageFile {
  path: string;
  compression: 'lz4' | 'none';
}

export interface DiskImage extends DiskImageFile {
  /** Size of the raw (decompressed) image. */
  sizeBytes: number;
}

export interface VariantImages {
  dir: string;
  /** `P` of image-layout.md §9: `<name>-<variant>-<arch>-<version>-<build>`. */
  prefix: string;
  version: string;
  buildId: string;
  os: DiskImageFile;
  data: DiskImageFile | undefined;
}

const lz4FrameMagic = 0x184d2204;

/** The directory `latest` points at, and the version and build id its name carries. */
export async function locateVariantImages(projectDir: string, arch: string, variant: string): Promise<VariantImages> {
  const latest = join(buildDir(projectDir), 'images', `${arch}-${variant}`, 'latest');
  let dir: string;
  try {
    dir = await realpath(latest);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
    throw new BrlError(`no images for ${variant} (${arch}): ${latest} does not exist`, {
      hint: `build them first: brl build variant ${variant} --arch ${arch}`,
      exitCode: ExitCode.notFound,
      code: 'NO_VARIANT_IMAGES',
    });
  }
  const versionMatch = /^(\d+\.\d+\.\d+)-(.+)$/.exec(basename(dir));
  if (!versionMatch) {
    throw new BrlError(`${latest} points at ${dir}, whose name is not <version>-<build>`, { exitCode: ExitCode.badInput, code: 'BAD_IMAGE_DIR' });
  }
  const [, version, buildId] = versionMatch as unknown as [string, string, string];
  const suffix = `-${variant}-${arch}-${version}-${buildId}`;
  const names = await readdir(dir);
  const pick = (kind: string): string | undefined =>
    names.find((name) => name.endsWith(`${suffix}${kind}.img.lz4`)) ?? names.find((name) => name.endsWith(`${suffix}${kind}.img`));
  const osName = pick('');
  if (!osName) {
    throw new BrlError(`no raw OS image (*${suffix}.img.lz4) in ${dir}`, {
      hint: 'AMIs need the raw image format; build the variant with image-format = "raw"',
      exitCode: ExitCode.notFound,
      code: 'NO_RAW_IMAGE',
    });
  }
  const dataName = pick('-data');
  const prefix = osName.replace(/\.img(\.lz4)?$/, '');
  return {
    dir,
    prefix,
    version,
    buildId,
    os: await diskImageFile(join(dir, osName)),
    data: dataName === undefined ? undefined : await diskImageFile(join(dir, dataName)),
  };
}

/** An existing image file; `.lz4` marks an LZ4 frame. */
export async function diskImageFile(path: string): Promise<DiskImageFile> {
  try {
    await stat(path);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
    throw new BrlError(`${path} does not exist`, { exitCode: ExitCode.notFound, code: 'FILE_NOT_FOUND' });
  }
  return { path, compression: path.endsWith('.lz4') ? 'lz4' : 'none' };
}

/**
 * The image and its raw size. For LZ4 the size comes from the frame header when the writer stored it, else
 * from decoding the image once just to count (seconds for GiBs, small next to the upload; only done when
 * an upload needs it).
 */
export async function describeDiskImage(file: DiskImageFile | string): Promise<DiskImage> {
  const image = typeof file === 'string' ? await diskImageFile(file) : file;
  if (image.compression === 'none') return { ...image, sizeBytes: (await stat(image.path)).size };
  return { ...image, sizeBytes: (await lz4ContentSize(image.path)) ?? (await countDecodedBytes(image)) };
}

/** The frame header's optional content size (`lz4 --content-size`), if the writer set it. */
async function lz4ContentSize(path: string): Promise<number | undefined> {
  const handle = await open(path, 'r');
  try {
    const header = Buffer.alloc(14);
    const { bytesRead } = await handle.read(header, 0, header.length, 0);
    if (bytesRead < 7 || header.readUInt32LE(0) !== lz4FrameMagic) {
      throw new BrlError(`${path} is not an LZ4 frame`, { exitCode: ExitCode.badInput, code: 'NOT_LZ4' });
    }
    const hasContentSize = ((header[4] ?? 0) & 0x08) !== 0;
    return hasContentSize && bytesRead >= 14 ? Number(header.readBigUInt64LE(6)) : undefined;
  } finally {
    await handle.close();
  }
}

async function countDecodedBytes(image: DiskImageFile): Promise<number> {
  let total = 0;
  for await (const chunk of openRawImage(image)) total += chunk.length;
  return total;
}

/**
 * The image's raw bytes as a stream. LZ4 frames are decoded by the `lz4` CLI (fast, and its output arrives
 * in small bounded chunks), or by brl's own streaming decoder on hosts without it.
 */
export async function* openRawImage(image: DiskImageFile): AsyncGenerator<Uint8Array> {
  if (image.compression === 'none') {
    // 4 MiB reads keep EBS's 512 KiB blocks aligned within each chunk.
    yield* createReadStream(image.path, { highWaterMark: 4 * 1024 * 1024 });
    return;
  }
  if (!hasLz4Cli()) {
    yield* createReadStream(image.path, { highWaterMark: 4 * 1024 * 1024 }).pipe(createLz4Decoder());
    return;
  }
  const child = spawn('lz4', ['-dc', image.path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  let finished = false;
  try {
    yield* child.stdout;
    finished = true;
  } finally {
    if (!finished) child.kill();
    const code = await exited;
    if (finished && code !== 0) {
      throw new BrlError(`lz4 could not decode ${image.path}: ${stderr.trim()}`, { exitCode: ExitCode.badInput, code: 'BAD_LZ4' });
    }
  }
}

let lz4CliFound: boolean | undefined;

function hasLz4Cli(): boolean {
  lz4CliFound ??= (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && isExecutable(join(dir, 'lz4')));
  return lz4CliFound;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
