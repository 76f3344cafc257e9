// Image features: the names brl accepts, Bottlerocket's defaults, and the ones it refuses.

export const imageFeatureNames = [
  'in-place-updates',
  'host-containers',
  'grub-set-private-var',
  'uefi-secure-boot',
  'systemd-networkd',
  'xfs-data-partition',
  'erofs-root-partition',
  'fips',
  'external-kmod-development',
  // brl: the guest API reachable from the host through `brl vm run` (development variants only).
  'api-bridge',
] as const;
export type ImageFeature = (typeof imageFeatureNames)[number];

export type ImageFeatures = Record<ImageFeature, boolean>;

export const defaultImageFeatures: ImageFeatures = {
  'in-place-updates': true,
  'host-containers': true,
  'grub-set-private-var': false,
  'uefi-secure-boot': false,
  'systemd-networkd': false,
  'xfs-data-partition': false,
  'erofs-root-partition': false,
  fips: false,
  'external-kmod-development': false,
  'api-bridge': false,
};

/** Parsed, then refused: newer upstream experiments brl does not implement. */
export const rejectedFeatures: Readonly<Record<string, string>> = {
  'encrypted-storage': 'encrypted storage is an experimental upstream feature brl does not implement',
  'ephemeral-encryption-keys': 'ephemeral encryption keys are an experimental upstream feature brl does not implement',
  'standalone-image': 'standalone images are an experimental upstream layout brl does not implement',
  'first-party-stack': 'first-party-stack is an upstream-only layout switch brl does not implement',
};

/** Keys that no longer exist; a manifest naming them is a parse error. */
export const removedFeatures: Readonly<Record<string, string>> = {
  'unified-cgroup-hierarchy': 'unified-cgroup-hierarchy was removed in twoliter 0.4.2; delete the key',
};

/** Accepted with a warning: upstream deprecated them, brl ignores or keeps them as capabilities. */
export const deprecatedFeatures: Readonly<Partial<Record<ImageFeature, string>>> = {
  'grub-set-private-var': 'grub-set-private-var is deprecated upstream; brl always sets the private variable and the bootconfig initrd',
  'systemd-networkd': 'systemd-networkd is deprecated upstream; brl only passes it on as a package capability',
};

export function isImageFeature(name: string): name is ImageFeature {
  return (imageFeatureNames as readonly string[]).includes(name);
}

/** `IN_PLACE_UPDATES`: the spelling for build arguments and image-features.env. */
export function featureEnvName(feature: string): string {
  return feature.toUpperCase().replaceAll('-', '_');
}
