// build-manifest.json: what a variant build produced, for publishing steps and people (typed, versioned).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import type { BootSigningSummary } from '../secure-boot/boot-path.ts';
import type { GptTable } from '../image/gpt.ts';
import type { DiskPlan } from '../image/layout.ts';
import type { ArtifactRecord } from './artifacts.ts';
import type { Architecture, ImageFormat, ImageLayout } from './definition.ts';
import type { ImageFeatures } from './features.ts';
import type { RpmPackage } from '../packages/rpm.ts';

export const buildManifestName = 'build-manifest.json';

/** The build manifest in a build's output directory, or undefined when it has none. */
export async function readBuildManifest(dir: string): Promise<BuildManifest | undefined> {
  const path = join(dir, buildManifestName);
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(await readFile(path, 'utf8')) as BuildManifest;
  } catch (error) {
    throw new BrlError(`${path} is not JSON: ${(error as Error).message}`, { hint: 'rebuild the variant', exitCode: ExitCode.badInput, code: 'BAD_BUILD_MANIFEST', cause: error });
  }
}

export interface ManifestPartition {
  number: number;
  key: string;
  /** GPT name; empty for DATA. */
  name: string;
  typeGuid: string;
  uniqueGuid: string;
  startMiB: number;
  sizeMiB: number;
  /** Decimal strings: LBAs exceed what JSON numbers carry exactly on large disks. */
  firstLba: string;
  lastLba: string;
  /** 64 GPT attribute bits as `0x` + 16 hex digits (gptprio lives in bits 48–57). */
  attributes: string;
}

export interface ManifestDisk {
  artifact: string;
  sizeBytes: number;
  diskGuid: string;
  partitions: ManifestPartition[];
}

export interface BuildManifest {
  schemaVersion: 1;
  variant: string;
  arch: Architecture;
  version: string;
  buildId: string;
  sourceDateEpoch: number;
  imageFormat: ImageFormat;
  imageLayout: ImageLayout;
  imageFeatures: ImageFeatures;
  /** image-layout.md §10: volume sizes for publishing (AMIs, OVAs). */
  publishSizesGiB: { os: number; data?: number; total: number };
  rootFilesystem: 'ext4' | 'erofs';
  verity: { rootHash: string; salt: string; uuid: string; dataBlocks: number; hashSize: number; table: string };
  disks: { os: ManifestDisk; data?: ManifestDisk };
  packages: Array<{ name: string; epoch: number; version: string; release: string; arch: string; license: string; sha256: string }>;
  /** Whether the boot path is signed for UEFI Secure Boot, and with which db certificate and GRUB key. */
  bootSigning: BootSigningSummary;
  artifacts: ArtifactRecord[];
  /** Friendly link names per artifact file. */
  links: Record<string, string[]>;
}

export function describeDisk(artifact: string, plan: DiskPlan, table: GptTable): ManifestDisk {
  return {
    artifact,
    sizeBytes: plan.sizeMiB * 1024 * 1024,
    diskGuid: table.diskGuid,
    partitions: plan.partitions.map((partition) => {
      const entry = table.partitions.find((candidate) => candidate.number === partition.number);
      if (entry === undefined) throw new Error(`partition ${partition.number} of the plan is missing from the GPT`);
      return {
        number: partition.number, key: partition.key, name: partition.name, typeGuid: partition.typeGuid,
        uniqueGuid: entry.uniqueGuid, startMiB: partition.startMiB, sizeMiB: partition.sizeMiB,
        firstLba: String(entry.firstLba), lastLba: String(entry.lastLba), attributes: `0x${entry.attributes.toString(16).padStart(16, '0')}`,
      };
    }),
  };
}

/** total = max(hint, N + D); split: OS volume N, data volume total − N; unified: one volume of total. */
export function publishSizes(layout: ImageLayout): BuildManifest['publishSizesGiB'] {
  const total = Math.max(layout.publishImageSizeHintGiB, layout.osImageSizeGiB + layout.dataImageSizeGiB);
  return layout.partitionPlan === 'split'
    ? { os: layout.osImageSizeGiB, data: total - layout.osImageSizeGiB, total }
    : { os: total, total };
}

export function manifestPackages(packages: readonly RpmPackage[]): BuildManifest['packages'] {
  return packages.map((pkg) => ({
    name: pkg.name, epoch: pkg.epoch ?? 0, version: pkg.version, release: pkg.release, arch: pkg.arch, license: pkg.license, sha256: pkg.sha256,
  }));
}
