// Variant names: `platform-runtime[-version][-flavor]`, the parts the metadata capabilities carry.

import { BrlError, ExitCode } from '../core/errors.ts';

export interface VariantNameParts {
  platform: string;
  runtime: string;
  /** Default `platform-runtime`. */
  family: string;
  /** Default `0`. */
  version: string;
  /** Default `none`. */
  flavor: string;
}

const namePattern = /^[a-z0-9][a-z0-9_.]*(?:-[a-z0-9][a-z0-9_.]*)*$/;
const versionSegment = /^\d+(?:\.\d+)*$/;

/**
 * Splits a variant id. The third part is the version when it is numeric (`aws-k8s-1.31`),
 * otherwise the start of the flavor (`aws-dev-nvidia`); everything after the version is the
 * flavor (`aws-k8s-1.31-fips-nvidia` → `fips-nvidia`). `overrides` are the manifest's
 * `platform`/`runtime`/`family`/`version`/`flavor` keys; with both `platform` and `runtime`
 * set, a single-part name such as `dev` is accepted.
 */
export function parseVariantName(name: string, overrides: Partial<VariantNameParts> = {}): VariantNameParts {
  const parts = name.split('-');
  const hasOverrides = overrides.platform !== undefined && overrides.runtime !== undefined;
  if (!namePattern.test(name) || (parts.length < 2 && !hasOverrides)) {
    throw new BrlError(`variant name "${name}" does not match platform-runtime[-version][-flavor]`, {
      hint: 'use lowercase letters, digits, "." and "_" in each part (e.g. aws-k8s-1.31, metal-dev), or set platform and runtime in variant.toml',
      exitCode: ExitCode.badInput,
      code: 'BAD_VARIANT_NAME',
    });
  }
  const [first, second, ...rest] = parts;
  let version = '0';
  if (rest.length > 0 && versionSegment.test(rest[0] as string)) version = rest.shift() as string;
  const platform = overrides.platform ?? (first as string);
  const runtime = overrides.runtime ?? (second as string);
  return {
    platform,
    runtime,
    family: overrides.family ?? `${platform}-${runtime}`,
    version: overrides.version ?? version,
    flavor: overrides.flavor ?? (rest.length > 0 ? rest.join('-') : 'none'),
  };
}
