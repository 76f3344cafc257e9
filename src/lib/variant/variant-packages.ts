// The RPMs a variant installs: its packages built (cached), then the closure of their dependencies.
import { BrlError, ExitCode } from '../core/errors.ts';
import { buildPackages } from '../packages/build.ts';
import { listPackageNames } from '../packages/manifest.ts';
import type { ProgressMode } from '../cli/progress.ts';
import { resolveClosure, unmetError } from './closure.ts';
import type { Architecture, VariantDefinition } from './definition.ts';
import { metadataCapabilities } from './metadata.ts';
import { queryRpm, type RpmPackage } from '../packages/rpm.ts';

export interface PackageBuildOptions {
  progress?: ProgressMode;
  jobs?: number;
}

/**
 * Builds the variant's packages, then resolves the install closure; project packages a requirement
 * names (or, failing that, all not yet built) are built on demand until it resolves or cannot.
 */
export async function variantPackages(projectDir: string, definition: VariantDefinition, arch: Architecture, options: PackageBuildOptions): Promise<RpmPackage[]> {
  if (definition.includedPackages.length === 0) {
    throw new BrlError(`variant ${definition.name} includes no packages`, {
      hint: `list them in included-packages in ${definition.manifestPath}`,
      exitCode: ExitCode.badInput,
      code: 'NO_PACKAGES',
    });
  }
  const known = new Set(await listPackageNames(projectDir));
  // A package name's spec directory: itself, or for a subpackage (`kernel-modules`) the longest prefix.
  const specDirOf = (pkg: string): string | undefined =>
    known.has(pkg) ? pkg : [...known].filter((dir) => pkg.startsWith(`${dir}-`)).sort((a, b) => b.length - a.length)[0];
  for (const pkg of definition.includedPackages) {
    if (specDirOf(pkg) === undefined) {
      throw new BrlError(`variant ${definition.name} includes unknown package "${pkg}"`, {
        hint: `known packages: ${[...known].join(', ') || '(none)'}; add packages-specs/${pkg}/ or fix included-packages in ${definition.manifestPath}`,
        exitCode: ExitCode.notFound,
        code: 'UNKNOWN_PACKAGE',
      });
    }
  }
  const rpmsByPackage = new Map<string, string[]>();
  const build = async (names: string[]): Promise<void> => {
    const result = await buildPackages(projectDir, {
      names, arch, progress: options.progress ?? 'auto', ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
    });
    const failed = result.packages.filter((pkg) => pkg.status === 'failed');
    if (failed.length > 0) {
      throw new BrlError(`package builds failed: ${failed.map((pkg) => `${pkg.name} (${pkg.error ?? 'failed'}; log: ${pkg.logPath})`).join(', ')}`, {
        hint: 'fix the package and run the variant build again; packages that built are cached',
        exitCode: ExitCode.buildFailed,
        code: 'PACKAGE_BUILD_FAILED',
      });
    }
    for (const pkg of result.packages) rpmsByPackage.set(pkg.name, pkg.rpms);
  };
  await build([...new Set(definition.includedPackages.map((pkg) => specDirOf(pkg) as string))]);
  const metadataProvides = metadataCapabilities(definition.name, definition.parts, definition.features);
  const queried = new Map<string, RpmPackage>();
  for (;;) {
    const paths = [...rpmsByPackage.values()].flat().sort();
    for (const path of paths) if (!queried.has(path)) queried.set(path, await queryRpm(path));
    const available = paths.map((path) => queried.get(path) as RpmPackage).filter((pkg) => pkg.arch === arch || pkg.arch === 'noarch');
    const closure = resolveClosure({
      variant: definition.name,
      roots: definition.includedPackages.map((pkg) => `bottlerocket-${pkg}`),
      available,
      metadataProvides,
    });
    if (closure.ok) return closure.packages;
    // Runtime dependencies are usually packages of the same project not built yet: build the ones
    // the requirement names and retry; when none is named (a soname, a file), build the rest once.
    const named = [...new Set(closure.unmet.map((u) => {
      const pkg = /^bottlerocket-([A-Za-z0-9._+-]+)/.exec(u.requirement)?.[1];
      return pkg === undefined ? undefined : specDirOf(pkg);
    }).filter((dir): dir is string => dir !== undefined && !rpmsByPackage.has(dir)))];
    const unbuilt = [...known].filter((pkg) => !rpmsByPackage.has(pkg));
    const next = named.length > 0 ? named : unbuilt;
    if (next.length === 0) throw unmetError(definition.name, closure.unmet);
    await build(next);
  }
}

