// The variant metadata capabilities (upstream's `bottlerocket-metadata` RPM), provided virtually.
import { imageFeatureNames, type ImageFeatures } from './features.ts';
import type { VariantNameParts } from './name.ts';
import type { Dependency } from '../packages/rpm.ts';

export const metadataPackageName = 'bottlerocket-metadata';

export function metadataCapabilities(variant: string, parts: VariantNameParts, features: ImageFeatures): Dependency[] {
  const names = [
    metadataPackageName,
    `bottlerocket-variant(${variant})`,
    `bottlerocket-variant-platform(${parts.platform})`,
    `bottlerocket-variant-runtime(${parts.runtime})`,
    `bottlerocket-variant-family(${parts.family})`,
    `bottlerocket-variant-flavor(${parts.flavor})`,
    ...imageFeatureNames.map((feature) => `bottlerocket-image-feature(${features[feature] ? '' : 'no-'}${feature})`),
  ];
  return names.map((name) => ({ name, flags: 0, version: '' }));
}
