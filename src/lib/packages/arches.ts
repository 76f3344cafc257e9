// Which arches a package builds for (`arches` in package.toml, narrowed by the spec's ExclusiveArch),
// which of its external files belong to an arch, and the errors for an arch a package does not have.
import { BrlError, ExitCode } from '../core/errors.ts';
import { buildArches, type BuildArch } from './macros.ts';
import type { ExternalFile, PackageDefinition } from './manifest.ts';

/** The arch of the machine brl runs on, in rpm's names. */
export const hostArch: BuildArch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';

/** Debian's name of each arch (debs, apt indices, `deb:<name>:<arch>=…`). */
export const debianArchOf: Record<BuildArch, string> = { x86_64: 'amd64', aarch64: 'arm64' };

export function buildArchOfDebian(debianArch: string): BuildArch | undefined {
  return buildArches.find((arch) => debianArchOf[arch] === debianArch);
}

/** A package without `arches` builds for every arch brl knows. */
export function packageArches(definition: Pick<PackageDefinition, 'arches'>): readonly BuildArch[] {
  return definition.arches ?? buildArches;
}

/** The external files a build for `arch` fetches and keys on: those without `arches`, and those listing `arch`. */
export function externalFilesFor(definition: Pick<PackageDefinition, 'externalFiles'>, arch: BuildArch): ExternalFile[] {
  return definition.externalFiles.filter((file) => file.arches === undefined || file.arches.includes(arch));
}

/**
 * The literal arches of a spec's `ExclusiveArch:` lines, or undefined when it has none (or only
 * macros, which only rpmbuild can expand): a spec that excludes an arch is refused before anything
 * is fetched, with the same error as a package.toml that does not list it.
 */
export function specExclusiveArches(specText: string): BuildArch[] | undefined {
  const listed = [...specText.matchAll(/^ExclusiveArch:[ \t]*(.*)$/gim)].flatMap((match) => (match[1] ?? '').split(/[\s,]+/));
  const literal = listed.filter((name) => (buildArches as readonly string[]).includes(name)) as BuildArch[];
  return literal.length === 0 ? undefined : [...new Set(literal)];
}

/**
 * Every package of a build must have the arch. `neededBy` maps a package to a selected package
 * that build-depends on it, so the error says why it is part of the build.
 */
export function requireArch(definitions: readonly PackageDefinition[], arch: BuildArch, neededBy: (name: string) => string | undefined): void {
  const lacking = definitions.filter((definition) => !packageArches(definition).includes(arch));
  if (lacking.length === 0) return;
  const lines = lacking.map((definition) => {
    const via = neededBy(definition.name);
    return `package ${definition.name} builds for ${packageArches(definition).join(', ')}, not ${arch}${via === undefined ? '' : ` (a build dependency of ${via})`}`;
  });
  throw new BrlError(lines.join('\n'), {
    hint: `a package's arches are \`arches\` in its package.toml, narrowed by ExclusiveArch in its spec; build another arch, or port the package and list ${arch} there (${lacking.map((definition) => definition.manifestPath).join(', ')})`,
    exitCode: ExitCode.badInput,
    code: 'UNSUPPORTED_ARCH',
  });
}
