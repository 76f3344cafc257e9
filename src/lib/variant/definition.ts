// Variant definitions: `variants/<name>/variant.toml` (or upstream's Cargo.toml), parsed strictly.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import {
  loadToml,
  readString,
  readStringArray,
  readTable,
  rejectUnknownKeys,
  tomlKeyError,
  type TomlDocument,
  type TomlTable,
} from '../core/toml.ts';
import {
  defaultImageFeatures,
  deprecatedFeatures,
  isImageFeature,
  rejectedFeatures,
  removedFeatures,
  imageFeatureNames,
  type ImageFeatures,
} from './features.ts';
import { parseVariantName, type VariantNameParts } from './name.ts';

export const variantsDirName = 'variants';
export const supportedArchitectures = ['x86_64', 'aarch64'] as const;
export type Architecture = (typeof supportedArchitectures)[number];
export const imageFormats = ['raw', 'qcow2', 'vmdk'] as const;
export type ImageFormat = (typeof imageFormats)[number];
export type PartitionPlan = 'split' | 'unified';

export interface ImageLayout {
  osImageSizeGiB: number;
  dataImageSizeGiB: number;
  publishImageSizeHintGiB: number;
  partitionPlan: PartitionPlan;
}

export interface VariantDefinition {
  name: string;
  dir: string;
  manifestPath: string;
  parts: VariantNameParts;
  /** Package names without the `bottlerocket-` prefix, as written. */
  includedPackages: string[];
  /** The kernel command line's first words, for every arch without its own list. */
  kernelParameters: string[];
  /** `[kernel-parameters-by-arch]`: an arch's own list, used instead of `kernelParameters`. */
  kernelParametersByArch: Partial<Record<Architecture, string[]>>;
  supportedArches: Architecture[];
  imageFormat: ImageFormat;
  layout: ImageLayout;
  features: ImageFeatures;
  /** Deprecated features the manifest sets, one sentence each. */
  warnings: string[];
}

const topLevelKeys = [
  'included-packages',
  'kernel-parameters',
  'kernel-parameters-by-arch',
  'supported-arches',
  'image-format',
  'image-layout',
  'image-features',
  'platform',
  'runtime',
  'family',
  'version',
  'flavor',
];
const layoutKeys = ['os-image-size-gib', 'data-image-size-gib', 'publish-image-size-hint-gib', 'partition-plan'];

export async function loadVariant(projectDir: string, name: string): Promise<VariantDefinition> {
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) {
    throw new BrlError(`"${name}" is not a variant name`, {
      hint: 'variant names are directory names under variants/: lowercase letters, digits, ".", "_" and "-"',
      exitCode: ExitCode.badInput,
      code: 'BAD_VARIANT_NAME',
    });
  }
  const dir = join(projectDir, variantsDirName, name);
  const tomlPath = join(dir, 'variant.toml');
  const cargoPath = join(dir, 'Cargo.toml');
  if (existsSync(tomlPath)) return parseVariantManifest(await loadToml(tomlPath), name, dir, []);
  if (existsSync(cargoPath)) {
    // Upstream keeps the same keys under [package.metadata.build-variant].
    const doc = await loadToml(cargoPath);
    const pkg = readTable(doc, doc.data, 'package') ?? {};
    const metadata = readTable(doc, pkg, 'metadata', 'package.') ?? {};
    const table = readTable(doc, metadata, 'build-variant', 'package.metadata.') ?? {};
    return parseVariantManifest({ ...doc, data: table }, name, dir, [], 'package.metadata.build-variant.');
  }
  const known = await listVariantNames(projectDir);
  throw new BrlError(`unknown variant "${name}": ${tomlPath} does not exist`, {
    hint: known.length > 0 ? `known variants: ${known.join(', ')}` : `no variants in ${join(projectDir, variantsDirName)}`,
    exitCode: ExitCode.notFound,
    code: 'UNKNOWN_VARIANT',
  });
}

export function parseVariantManifest(
  doc: TomlDocument,
  name: string,
  dir: string,
  warnings: string[] = [],
  prefix = '',
): VariantDefinition {
  const data = doc.data;
  rejectUnknownKeys(doc, data, topLevelKeys, prefix);
  const overrides: Partial<VariantNameParts> = {};
  for (const key of ['platform', 'runtime', 'family', 'version', 'flavor'] as const) {
    const value = readString(doc, data, key, prefix);
    if (value !== undefined) overrides[key] = value;
  }
  const parts = parseVariantName(name, overrides);

  const includedPackages = readStringArray(doc, data, 'included-packages', prefix) ?? [];
  for (const pkg of includedPackages) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(pkg)) {
      throw tomlKeyError(doc, `${prefix}included-packages`, `"${pkg}" is not a package name`);
    }
  }
  const kernelParameters = readKernelParameters(doc, data, 'kernel-parameters', prefix) ?? [];
  const arches = readStringArray(doc, data, 'supported-arches', prefix) ?? [...supportedArchitectures];
  for (const arch of arches) {
    if (!(supportedArchitectures as readonly string[]).includes(arch)) {
      throw tomlKeyError(doc, `${prefix}supported-arches`, `unknown architecture "${arch}" (expected: ${supportedArchitectures.join(', ')})`);
    }
  }
  const byArchTable = readTable(doc, data, 'kernel-parameters-by-arch', prefix) ?? {};
  const kernelParametersByArch: Partial<Record<Architecture, string[]>> = {};
  for (const arch of Object.keys(byArchTable)) {
    // A key naming no arch the variant builds (e.g. "arm64") would be silently unused.
    if (!arches.includes(arch)) {
      throw tomlKeyError(doc, `${prefix}kernel-parameters-by-arch.${arch}`, `"${arch}" is not one of the variant's supported-arches (${arches.join(', ')})`);
    }
    kernelParametersByArch[arch as Architecture] = readKernelParameters(doc, byArchTable, arch, `${prefix}kernel-parameters-by-arch.`) ?? [];
  }
  const imageFormat = readString(doc, data, 'image-format', prefix) ?? 'raw';
  if (!(imageFormats as readonly string[]).includes(imageFormat)) {
    throw tomlKeyError(doc, `${prefix}image-format`, `"${imageFormat}" is not supported (expected: ${imageFormats.join(', ')})`);
  }

  return {
    name,
    dir,
    manifestPath: doc.path,
    parts,
    includedPackages,
    kernelParameters,
    kernelParametersByArch,
    supportedArches: arches as Architecture[],
    imageFormat: imageFormat as ImageFormat,
    layout: parseLayout(doc, readTable(doc, data, 'image-layout', prefix) ?? {}, `${prefix}image-layout.`),
    features: parseFeatures(doc, readTable(doc, data, 'image-features', prefix) ?? {}, `${prefix}image-features.`, warnings),
    warnings,
  };
}

function readKernelParameters(doc: TomlDocument, table: TomlTable, key: string, prefix: string): string[] | undefined {
  const parameters = readStringArray(doc, table, key, prefix);
  for (const parameter of parameters ?? []) {
    if (parameter === '' || /\s|"/.test(parameter)) {
      throw tomlKeyError(doc, `${prefix}${key}`, `"${parameter}" must be one non-empty word without quotes`);
    }
  }
  return parameters;
}

/**
 * The variant's kernel parameters on `arch`: its own list under `[kernel-parameters-by-arch]`, else
 * `kernel-parameters`. A whole list rather than extra words, because order matters on the command
 * line: /dev/console, where systemd writes its status, is the last `console=`.
 */
export function kernelParametersFor(definition: Pick<VariantDefinition, 'kernelParameters' | 'kernelParametersByArch'>, arch: Architecture): string[] {
  return definition.kernelParametersByArch[arch] ?? definition.kernelParameters;
}

function parseLayout(doc: TomlDocument, table: TomlTable, prefix: string): ImageLayout {
  rejectUnknownKeys(doc, table, layoutKeys, prefix);
  const plan = readString(doc, table, 'partition-plan', prefix) ?? 'split';
  if (plan !== 'split' && plan !== 'unified') {
    throw tomlKeyError(doc, `${prefix}partition-plan`, `"${plan}" is not a partition plan (expected: split, unified)`);
  }
  return {
    osImageSizeGiB: readSizeGiB(doc, table, 'os-image-size-gib', prefix, 2),
    dataImageSizeGiB: readSizeGiB(doc, table, 'data-image-size-gib', prefix, 1),
    publishImageSizeHintGiB: readSizeGiB(doc, table, 'publish-image-size-hint-gib', prefix, 22),
    partitionPlan: plan,
  };
}

function readSizeGiB(doc: TomlDocument, table: TomlTable, key: string, prefix: string, fallback: number): number {
  const value = table[key];
  if (value === undefined) return fallback;
  // smol-toml returns integers as bigint only when asked; numbers otherwise.
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw tomlKeyError(doc, `${prefix}${key}`, `must be a whole number of GiB from 1 to 65535, got ${JSON.stringify(value)}`);
  }
  return value;
}

function parseFeatures(doc: TomlDocument, table: TomlTable, prefix: string, warnings: string[]): ImageFeatures {
  const features: ImageFeatures = { ...defaultImageFeatures };
  for (const [key, value] of Object.entries(table)) {
    const removed = removedFeatures[key];
    if (removed !== undefined) throw tomlKeyError(doc, `${prefix}${key}`, removed);
    const rejected = rejectedFeatures[key];
    if (rejected !== undefined) throw tomlKeyError(doc, `${prefix}${key}`, rejected);
    if (!isImageFeature(key)) {
      throw tomlKeyError(doc, `${prefix}${key}`, `unknown image feature (expected one of: ${imageFeatureNames.join(', ')})`);
    }
    if (typeof value !== 'boolean') throw tomlKeyError(doc, `${prefix}${key}`, `must be true or false, got ${JSON.stringify(value)}`);
    features[key] = value;
    const deprecation = deprecatedFeatures[key];
    if (deprecation !== undefined) warnings.push(`${doc.path}: ${deprecation}`);
  }
  return features;
}

export async function listVariantNames(projectDir: string): Promise<string[]> {
  const root = join(projectDir, variantsDirName);
  if (!existsSync(root)) return [];
  const entries = await readdir(root, { withFileTypes: true });
  return entries
    .filter((entry) => entry.isDirectory() && (existsSync(join(root, entry.name, 'variant.toml')) || existsSync(join(root, entry.name, 'Cargo.toml'))))
    .map((entry) => entry.name)
    .sort();
}
