// The dependency closure of some root packages over apt's indices, as apt would install them on an
// empty system: each package's candidate is its highest version; Depends and Pre-Depends are
// followed (Recommends and Suggests are not); excluded names end the walk where another brl
// package provides them.
import { BrlError, ExitCode } from '../core/errors.ts';
import { formatRelation, type Alternatives, type Relation } from './control.ts';
import type { BinaryPackage } from './indices.ts';
import { compareDebianVersions, satisfiesVersion } from './version.ts';

export const rootMarker = '(root)';

export interface ResolveInput {
  roots: readonly string[];
  /** Package name → why it is left out (what provides it instead). */
  exclude: ReadonlyMap<string, string>;
  architecture: string;
  /** Where the roots and excludes are written, for error messages. */
  where: string;
}

export interface ResolvedPackage {
  pkg: BinaryPackage;
  /** Sorted names of the packages whose relations chose this one, or `(root)`. */
  requiredBy: string[];
}

export interface ExcludedPackage {
  name: string;
  reason: string;
  requiredBy: string[];
}

export interface Closure {
  packages: ResolvedPackage[];
  excluded: ExcludedPackage[];
  /** Excludes no package in the closure asked for. */
  unusedExcludes: string[];
}

interface Provider {
  pkg: BinaryPackage;
  version?: string;
}

export function candidates(universe: readonly BinaryPackage[], architecture: string): Map<string, BinaryPackage> {
  const best = new Map<string, BinaryPackage>();
  for (const pkg of universe) {
    if (pkg.architecture !== architecture && pkg.architecture !== 'all') continue;
    const current = best.get(pkg.name);
    if (current === undefined || compareDebianVersions(pkg.version, current.version) > 0) best.set(pkg.name, pkg);
  }
  return best;
}

export function resolveClosure(universe: readonly BinaryPackage[], input: ResolveInput): Closure {
  const byName = candidates(universe, input.architecture);
  const providers = new Map<string, Provider[]>();
  for (const pkg of byName.values()) {
    for (const [provided] of pkg.provides) {
      if (provided === undefined) continue;
      const list = providers.get(provided.name) ?? [];
      list.push({ pkg, ...(provided.version === undefined ? {} : { version: provided.version.value }) });
      providers.set(provided.name, list);
    }
  }
  for (const list of providers.values()) list.sort((a, b) => a.pkg.name.localeCompare(b.pkg.name));

  const selected = new Map<string, { pkg: BinaryPackage; requiredBy: Set<string> }>();
  const excludedUse = new Map<string, Set<string>>();
  const queue: BinaryPackage[] = [];
  const select = (pkg: BinaryPackage, by: string): void => {
    const entry = selected.get(pkg.name);
    if (entry !== undefined) {
      entry.requiredBy.add(by);
      return;
    }
    selected.set(pkg.name, { pkg, requiredBy: new Set([by]) });
    queue.push(pkg);
  };

  for (const root of [...new Set(input.roots)].sort()) {
    if (input.exclude.has(root)) {
      throw new BrlError(`${input.where}: "${root}" is both a root and excluded`, { exitCode: ExitCode.badInput, code: 'DEB_ROOT_EXCLUDED' });
    }
    const chosen = chooseAlternative([{ name: root }], byName, providers, selected);
    if (chosen === undefined) {
      throw new BrlError(`${input.where}: root package "${root}" is in no apt index for ${input.architecture}`, {
        hint: 'check the name (`apt-cache policy NAME`), or run `apt-get update`',
        exitCode: ExitCode.notFound,
        code: 'DEB_PACKAGE_UNKNOWN',
      });
    }
    select(chosen, rootMarker);
  }

  while (queue.length > 0) {
    const pkg = queue.shift() as BinaryPackage;
    for (const clause of [...pkg.preDepends, ...pkg.depends]) {
      const excluded = clause.find((relation) => input.exclude.has(relation.name));
      if (excluded !== undefined) {
        const users = excludedUse.get(excluded.name) ?? new Set<string>();
        users.add(pkg.name);
        excludedUse.set(excluded.name, users);
        continue;
      }
      const chosen = chooseAlternative(clause, byName, providers, selected);
      if (chosen === undefined) throw unsatisfiable(pkg, clause, byName, input);
      select(chosen, pkg.name);
    }
  }

  const packages = [...selected.values()]
    .map(({ pkg, requiredBy }) => ({ pkg, requiredBy: [...requiredBy].sort() }))
    .sort((a, b) => a.pkg.name.localeCompare(b.pkg.name));
  const excluded = [...excludedUse.entries()]
    .map(([name, users]) => ({ name, reason: input.exclude.get(name) ?? '', requiredBy: [...users].sort() }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const unusedExcludes = [...input.exclude.keys()].filter((name) => !excludedUse.has(name)).sort();
  return { packages, excluded, unusedExcludes };
}

/** A package already chosen wins (as apt keeps what is installed); then the alternatives in order. */
function chooseAlternative(
  clause: Alternatives,
  byName: ReadonlyMap<string, BinaryPackage>,
  providers: ReadonlyMap<string, Provider[]>,
  selected: ReadonlyMap<string, { pkg: BinaryPackage }>,
): BinaryPackage | undefined {
  for (const relation of clause) {
    const real = selected.get(relation.name)?.pkg;
    if (real !== undefined && versionMatches(real.version, relation)) return real;
    const provider = (providers.get(relation.name) ?? []).find((p) => selected.has(p.pkg.name) && providerMatches(p, relation));
    if (provider !== undefined) return provider.pkg;
  }
  for (const relation of clause) {
    const real = byName.get(relation.name);
    if (real !== undefined && versionMatches(real.version, relation)) return real;
    const provider = (providers.get(relation.name) ?? []).find((p) => providerMatches(p, relation));
    if (provider !== undefined) return provider.pkg;
  }
  return undefined;
}

function versionMatches(version: string, relation: Relation): boolean {
  return relation.version === undefined || satisfiesVersion(version, relation.version.operator, relation.version.value);
}

/** A versioned relation is satisfied only by a versioned Provides (Debian policy 7.5). */
function providerMatches(provider: Provider, relation: Relation): boolean {
  if (relation.version === undefined) return true;
  return provider.version !== undefined && satisfiesVersion(provider.version, relation.version.operator, relation.version.value);
}

function unsatisfiable(pkg: BinaryPackage, clause: Alternatives, byName: ReadonlyMap<string, BinaryPackage>, input: ResolveInput): BrlError {
  const wanted = clause.map(formatRelation).join(' | ');
  const found = clause
    .map((relation) => byName.get(relation.name))
    .filter((candidate): candidate is BinaryPackage => candidate !== undefined)
    .map((candidate) => `${candidate.name} ${candidate.version}`);
  return new BrlError(`${input.where}: ${pkg.name} ${pkg.version} needs ${wanted}, which the apt indices cannot satisfy${found.length > 0 ? ` (candidates: ${found.join(', ')})` : ''}`, {
    hint: 'run `apt-get update`, or exclude the package with a reason if another brl package provides it',
    exitCode: ExitCode.badInput,
    code: 'DEB_UNSATISFIABLE',
  });
}
