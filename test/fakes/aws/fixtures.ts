// Test inputs for the AWS tests: small sparse raw images (optionally lz4-compressed) laid out like a variant build.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FakeAwsState, FakeImage } from './state.ts';

const run = promisify(execFile);

/** Writes a sparse file of `sizeBytes` with pseudo-random data at each `[offset, length]` range. */
export async function makeSparseImage(path: string, sizeBytes: number, dataRanges: [number, number][]): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.truncate(sizeBytes);
    for (const [offset, length] of dataRanges) {
      const data = Buffer.alloc(length);
      for (let i = 0; i < length; i += 32) createHash('sha256').update(`${path}:${offset + i}`).digest().copy(data, i);
      await handle.write(data, 0, length, offset);
    }
  } finally {
    await handle.close();
  }
}

/** Block indexes holding a non-zero byte, and each one's SHA-256, computed independently of brl. */
export async function expectedBlocks(path: string, blockSize: number): Promise<Map<number, string>> {
  const handle = await open(path, 'r');
  const blocks = new Map<number, string>();
  try {
    const buffer = Buffer.alloc(blockSize);
    for (let index = 0; ; index++) {
      buffer.fill(0);
      const { bytesRead } = await handle.read(buffer, 0, blockSize, index * blockSize);
      if (bytesRead === 0) break;
      if (buffer.some((byte) => byte !== 0)) blocks.set(index, createHash('sha256').update(buffer).digest('base64'));
    }
  } finally {
    await handle.close();
  }
  return blocks;
}

export async function lz4Compress(rawPath: string, lz4Path: string): Promise<void> {
  await run('lz4', ['-q', '-f', '-1', rawPath, lz4Path]);
}

export interface VariantProject {
  projectDir: string;
  imageDir: string;
  osRaw: string;
  dataRaw: string;
  prefix: string;
}

/**
 * A project with `variants/<variant>/variant.toml` and a build in build/images/<arch>-<variant>/1.0.0-abcdef12/
 * (OS and data disks as `.img.lz4`, the raw files kept beside the project for checking).
 */
export async function makeVariantProject(options: { variant?: string; arch?: string; variantToml?: string; amispec?: string } = {}): Promise<VariantProject> {
  const variant = options.variant ?? 'aws-dev';
  const arch = options.arch ?? 'x86_64';
  const projectDir = await mkdtemp(join(tmpdir(), 'brl-aws-'));
  await mkdir(join(projectDir, 'variants', variant), { recursive: true });
  await writeFile(join(projectDir, 'variants', variant, 'variant.toml'), options.variantToml ?? 'included-packages = ["release"]\n');
  if (options.amispec) await writeFile(join(projectDir, 'variants', variant, 'amispec.toml'), options.amispec);
  const build = '1.0.0-abcdef12';
  const imageDir = join(projectDir, 'build', 'images', `${arch}-${variant}`, build);
  await mkdir(imageDir, { recursive: true });
  await symlink(build, join(projectDir, 'build', 'images', `${arch}-${variant}`, 'latest'));
  const prefix = `bottlerocket-${variant}-${arch}-${build}`;
  const MiB = 1024 * 1024;
  const osRaw = join(projectDir, 'os.raw');
  const dataRaw = join(projectDir, 'data.raw');
  // Data at the start, a block straddling two, and the very last bytes (the short tail block).
  await makeSparseImage(osRaw, 6 * MiB + 4096, [[0, 100_000], [3 * MiB - 1000, 2000], [6 * MiB, 4096]]);
  await makeSparseImage(dataRaw, 4 * MiB, [[MiB, 512 * 1024]]);
  await lz4Compress(osRaw, join(imageDir, `${prefix}.img.lz4`));
  await lz4Compress(dataRaw, join(imageDir, `${prefix}-data.img.lz4`));
  return { projectDir, imageDir, osRaw, dataRaw, prefix };
}

/**
 * An available AMI backed by one completed snapshot, put straight into the fake's state as `brl ami publish`
 * would leave it (private, ENA, sriov, no boot mode); returns the AMI id.
 */
export function addPublishedImage(state: FakeAwsState, region: string, name: string, overrides: Partial<FakeImage> = {}): string {
  const snapshotId = state.newId('snap');
  state.snapshots.set(snapshotId, {
    id: snapshotId, region, ownerId: state.options.accountId, volumeSizeGiB: 2, blockSize: 524288, description: '', state: 'completed',
    blocks: new Map(), bytesWritten: 0, signedPayloadPuts: 0, notFoundPutsLeft: 0, describesUntilCompleted: 0, createVolumeUserIds: new Set(), createVolumeGroups: new Set(), clientToken: undefined,
  });
  const id = state.newId('ami');
  state.images.set(id, {
    id, region, ownerId: state.options.accountId, name, description: '', architecture: 'x86_64', virtualizationType: 'hvm', rootDeviceName: '/dev/xvda',
    enaSupport: true, sriovNetSupport: 'simple', bootMode: undefined, uefiData: undefined, imdsSupport: undefined, tpmSupport: undefined,
    blockDevices: [{ deviceName: '/dev/xvda', snapshotId, volumeSizeGiB: 2, volumeType: 'gp2', deleteOnTermination: true }],
    tags: {}, state: 'available', describesUntilAvailable: 0, launchPermissions: [], sourceImageId: undefined, sourceRegion: undefined,
    ...overrides,
  });
  return id;
}
