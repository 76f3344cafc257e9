// Output artifacts: names, LZ4 frames, qcow2/vmdk conversion, checksums and the per-artifact links.
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { open, symlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { BrlError, ExitCode } from '../core/errors.ts';
import { hashFile } from '../core/hash.ts';
import { createLz4Encoder, LZ4_ENCODER_ARGS } from '../image/lz4.ts';
import { diskBytes, type WrittenDisk } from './disk.ts';
import type { ImageFormat } from './definition.ts';

const run = promisify(execFile);

export interface ArtifactNaming {
  /** `bottlerocket` unless BUILDSYS_NAME says otherwise. */
  imageName: string;
  variant: string;
  arch: string;
  version: string;
  buildId: string;
}

/** `<name>-<variant>-<arch>-<version>-<build>`, the prefix of every artifact. */
export function artifactPrefix(naming: ArtifactNaming): string {
  return `${naming.imageName}-${naming.variant}-${naming.arch}-${naming.version}-${naming.buildId}`;
}

/** The three friendly links upstream makes for an artifact with suffix `sfx`. */
export function artifactLinks(naming: ArtifactNaming, suffix: string): string[] {
  const base = `${naming.imageName}-${naming.variant}-${naming.arch}`;
  return [`${base}${suffix}`, `${base}-${naming.version}${suffix}`, `${base}-v${naming.version}${suffix}`];
}

export function diskSuffix(format: ImageFormat): string {
  return format === 'raw' ? '.img.lz4' : format === 'qcow2' ? '.qcow2' : '.vmdk';
}

/** LZ4-frames `source` into `target` with the flags of every brl `.lz4` (the host's lz4 reads sparse input fast). */
export async function compressLz4(source: string, target: string): Promise<void> {
  const args = LZ4_ENCODER_ARGS.filter((arg) => arg !== '-c');
  await run('lz4', [...args, '-f', source, target]).catch((error: { stderr?: string }) => {
    throw new BrlError(`lz4 failed compressing ${basename(source)}: ${error.stderr?.trim() ?? String(error)}`, {
      exitCode: ExitCode.buildFailed,
      code: 'LZ4_FAILED',
    });
  });
}

/**
 * LZ4-frames a disk brl wrote, streaming its data extents and producing the zeros between them
 * in memory (byte-identical to `compressLz4` on the file, without reading holes back).
 */
export async function compressDiskLz4(source: string, disk: Pick<WrittenDisk, 'sizeBytes' | 'extents'>, target: string): Promise<void> {
  await pipeline(Readable.from(diskBytes(source, disk)), createLz4Encoder({ contentSize: disk.sizeBytes }), createWriteStream(target));
}

/**
 * Converts a raw disk with qemu-img. A streamOptimized vmdk carries a random content id (CID);
 * it is replaced with `cid` so the file is reproducible.
 */
export async function convertDisk(source: string, target: string, format: 'qcow2' | 'vmdk', cid: string): Promise<void> {
  const args = format === 'qcow2'
    ? ['convert', '-f', 'raw', '-O', 'qcow2', source, target]
    : ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', source, target];
  await run('qemu-img', args).catch((error: { stderr?: string }) => {
    throw new BrlError(`qemu-img could not convert ${basename(source)} to ${format}: ${error.stderr?.trim() ?? String(error)}`, {
      exitCode: ExitCode.buildFailed,
      code: 'CONVERT_FAILED',
    });
  });
  if (format === 'vmdk') await pinVmdkCid(target, cid);
}

async function pinVmdkCid(path: string, cid: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    // The sparse extent header (VMDK spec) says where the embedded text descriptor lives.
    const header = Buffer.alloc(512);
    await handle.read(header, 0, 512, 0);
    if (header.toString('latin1', 0, 4) !== 'KDMV') throw new Error(`${path} is not a sparse vmdk`);
    const offset = Number(header.readBigUInt64LE(28)) * 512;
    const size = Number(header.readBigUInt64LE(36)) * 512;
    const region = Buffer.alloc(size);
    await handle.read(region, 0, size, offset);
    const nul = region.indexOf(0);
    const text = region.toString('latin1', 0, nul < 0 ? size : nul);
    // qemu-img prints a random CID without zero padding, so the line's length varies too.
    const pinned = text.replace(/^CID=[0-9a-f]+$/m, `CID=${cid}`);
    if (pinned === text && !text.includes(`CID=${cid}`)) throw new Error(`no CID in the descriptor of ${path}`);
    if (pinned.length > size) throw new Error(`the descriptor of ${path} has no room for the CID`);
    const rewritten = Buffer.alloc(size);
    rewritten.write(pinned, 'latin1');
    await handle.write(rewritten, 0, size, offset);
  } finally {
    await handle.close();
  }
}

export interface ArtifactRecord {
  file: string;
  kind: string;
  sizeBytes: number;
  sha256: string;
}

export async function describeArtifact(dir: string, file: string, kind: string): Promise<ArtifactRecord> {
  const path = join(dir, file);
  const { hex, bytes } = await hashFile(path);
  return { file, kind, sizeBytes: bytes, sha256: hex };
}

/** Creates the friendly links for `file` in `dir`; returns their names. */
export async function linkArtifact(dir: string, file: string, naming: ArtifactNaming, suffix: string): Promise<string[]> {
  const links = artifactLinks(naming, suffix);
  for (const link of links) await symlink(file, join(dir, link));
  return links;
}
