// The os-release fields a variant build appends, and image-features.env.
import { featureEnvName, imageFeatureNames, type ImageFeatures } from './features.ts';

export interface OsReleaseInput {
  variant: string;
  version: string;
  buildId: string;
  prettyName: string;
}

export const projectUrls = {
  HOME_URL: 'https://github.com/bottlerocket-os/bottlerocket',
  SUPPORT_URL: 'https://github.com/bottlerocket-os/bottlerocket/discussions',
  BUG_REPORT_URL: 'https://github.com/bottlerocket-os/bottlerocket/issues',
  DOCUMENTATION_URL: 'https://bottlerocket.dev',
} as const;

/** The base file, when no package ships one. */
export const baseOsRelease = 'NAME=Bottlerocket\nID=bottlerocket\n';

export function osReleaseFields(input: OsReleaseInput): Array<[string, string]> {
  return [
    ['VERSION', `"${input.version} (${input.variant})"`],
    ['PRETTY_NAME', `"${input.prettyName} ${input.version} (${input.variant})"`],
    ['VARIANT_ID', input.variant],
    ['VERSION_ID', input.version],
    ['BUILD_ID', input.buildId],
    ...Object.entries(projectUrls).map(([key, url]): [string, string] => [key, `"${url}"`]),
  ];
}

export function renderOsReleaseAppendix(input: OsReleaseInput): string {
  return osReleaseFields(input).map(([key, value]) => `${key}=${value}\n`).join('');
}

/** `/usr/share/bottlerocket/image-features.env`, newer upstream's keys plus every feature brl knows. */
export function renderImageFeaturesEnv(features: ImageFeatures, imageFormat: string): { features: string; format: string } {
  const lines = [
    `DATA_PARTITION_FILESYSTEM=${features['xfs-data-partition'] ? 'xfs' : 'ext4'}`,
    ...imageFeatureNames.map((feature) => `${featureEnvName(feature)}=${features[feature]}`),
    'ENCRYPTED_STORAGE=false',
    'EPHEMERAL_ENCRYPTION_KEYS=false',
    'STANDALONE_IMAGE=false',
  ];
  return { features: `${lines.join('\n')}\n`, format: `IMAGE_FORMAT=${imageFormat}\nUKI_IMAGE=false\n` };
}
