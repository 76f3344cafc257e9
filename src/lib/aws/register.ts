// The RegisterImage request (spec §4): pubsys' defaults plus a variant's optional amispec.toml overrides.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { RegisterImageCommandInput } from '@aws-sdk/client-ec2';
import { loadToml, readBoolean, readString, readTable, rejectUnknownKeys, tomlKeyError } from '../core/toml.ts';
import type { ImageLayout } from '../variant/definition.ts';

/** RegisterImage fields a variant may set in `variants/<name>/amispec.toml` (kebab-case, merged over the default). */
export interface AmiSpec {
  bootMode?: 'legacy-bios' | 'uefi' | 'uefi-preferred';
  imdsSupport?: 'v2.0';
  tpmSupport?: 'v2.0';
  enaSupport?: boolean;
  sriovNetSupport?: string;
  volumeType?: 'gp2' | 'gp3';
  tags?: Record<string, string>;
}

const amispecKeys = ['boot-mode', 'imds-support', 'tpm-support', 'ena-support', 'sriov-net-support', 'volume-type', 'tags'];

export async function loadAmiSpec(variantDir: string): Promise<AmiSpec> {
  const path = join(variantDir, 'amispec.toml');
  if (!existsSync(path)) return {};
  const doc = await loadToml(path);
  rejectUnknownKeys(doc, doc.data, amispecKeys);
  const oneOf = <T extends string>(key: string, allowed: readonly T[]): T | undefined => {
    const value = readString(doc, doc.data, key);
    if (value !== undefined && !(allowed as readonly string[]).includes(value)) {
      throw tomlKeyError(doc, key, `"${value}" is not one of ${allowed.join(', ')}`);
    }
    return value as T | undefined;
  };
  const spec: AmiSpec = {};
  const bootMode = oneOf('boot-mode', ['legacy-bios', 'uefi', 'uefi-preferred'] as const);
  const imdsSupport = oneOf('imds-support', ['v2.0'] as const);
  const tpmSupport = oneOf('tpm-support', ['v2.0'] as const);
  const volumeType = oneOf('volume-type', ['gp2', 'gp3'] as const);
  const enaSupport = readBoolean(doc, doc.data, 'ena-support');
  const sriovNetSupport = readString(doc, doc.data, 'sriov-net-support');
  if (bootMode) spec.bootMode = bootMode;
  if (imdsSupport) spec.imdsSupport = imdsSupport;
  if (tpmSupport) spec.tpmSupport = tpmSupport;
  if (volumeType) spec.volumeType = volumeType;
  if (enaSupport !== undefined) spec.enaSupport = enaSupport;
  if (sriovNetSupport !== undefined) spec.sriovNetSupport = sriovNetSupport;
  const tags = readTable(doc, doc.data, 'tags');
  if (tags) {
    spec.tags = {};
    for (const key of Object.keys(tags)) spec.tags[key] = readString(doc, tags, key, 'tags.') ?? '';
  }
  return spec;
}

export interface PublishSizes {
  osVolumeGiB: number;
  /** Only for the split plan. */
  dataVolumeGiB: number | undefined;
}

/** image-layout.md §10: total = max(hint, N + D); split → N + (total − N), unified → one volume of total. */
export function publishSizes(layout: ImageLayout): PublishSizes {
  const total = Math.max(layout.publishImageSizeHintGiB, layout.osImageSizeGiB + layout.dataImageSizeGiB);
  return layout.partitionPlan === 'split'
    ? { osVolumeGiB: layout.osImageSizeGiB, dataVolumeGiB: total - layout.osImageSizeGiB }
    : { osVolumeGiB: total, dataVolumeGiB: undefined };
}

/** EC2's architecture names: aarch64 is `arm64`. */
export function ec2Architecture(arch: string): 'x86_64' | 'arm64' {
  return arch === 'aarch64' || arch === 'arm64' ? 'arm64' : 'x86_64';
}

/**
 * Boot mode and ENA support as RegisterImage gets them: the amispec's, else `uefi` for a signed boot path (its
 * UefiData enrolls the keys, and legacy BIOS would boot it unchecked), and ENA on.
 */
export function bootSettings(amiSpec: AmiSpec, uefiSecureBoot: boolean): { bootMode: AmiSpec['bootMode']; enaSupport: boolean } {
  return { bootMode: amiSpec.bootMode ?? (uefiSecureBoot ? 'uefi' : undefined), enaSupport: amiSpec.enaSupport ?? true };
}

export interface RegisterRequestOptions {
  name: string;
  description: string | undefined;
  arch: string;
  osSnapshotId: string;
  dataSnapshotId: string | undefined;
  sizes: PublishSizes;
  uefiSecureBoot: boolean;
  /** The base64 UEFI variable store; registered only for a signed boot path. */
  uefiData: string | undefined;
  amiSpec: AmiSpec;
}

export function registerImageInput(options: RegisterRequestOptions): RegisterImageCommandInput {
  const { amiSpec, sizes } = options;
  const volumeType = amiSpec.volumeType ?? 'gp2';
  const blockDeviceMappings: NonNullable<RegisterImageCommandInput['BlockDeviceMappings']> = [
    { DeviceName: '/dev/xvda', Ebs: { SnapshotId: options.osSnapshotId, VolumeType: volumeType, VolumeSize: sizes.osVolumeGiB, DeleteOnTermination: true } },
  ];
  if (options.dataSnapshotId !== undefined && sizes.dataVolumeGiB !== undefined) {
    blockDeviceMappings.push({
      DeviceName: '/dev/xvdb',
      Ebs: { SnapshotId: options.dataSnapshotId, VolumeType: volumeType, VolumeSize: sizes.dataVolumeGiB, DeleteOnTermination: true },
    });
  }
  const { bootMode, enaSupport } = bootSettings(amiSpec, options.uefiSecureBoot);
  const uefiData = options.uefiSecureBoot ? options.uefiData : undefined;
  return {
    Name: options.name,
    ...(options.description === undefined ? {} : { Description: options.description }),
    Architecture: ec2Architecture(options.arch),
    VirtualizationType: 'hvm',
    RootDeviceName: '/dev/xvda',
    EnaSupport: enaSupport,
    SriovNetSupport: amiSpec.sriovNetSupport ?? 'simple',
    BlockDeviceMappings: blockDeviceMappings,
    ...(bootMode === undefined ? {} : { BootMode: bootMode }),
    ...(uefiData === undefined ? {} : { UefiData: uefiData }),
    ...(amiSpec.imdsSupport === undefined ? {} : { ImdsSupport: amiSpec.imdsSupport }),
    ...(amiSpec.tpmSupport === undefined ? {} : { TpmSupport: amiSpec.tpmSupport }),
    ...(amiSpec.tags === undefined
      ? {}
      : { TagSpecifications: [{ ResourceType: 'image', Tags: Object.entries(amiSpec.tags).map(([Key, Value]) => ({ Key, Value })) }] }),
  };
}
