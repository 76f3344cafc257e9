// The install closure: the variant's packages plus everything their Requires pull in, checked for Conflicts.
import { BrlError, ExitCode } from '../core/errors.ts';
import { parseRichDependency, type DepTree } from './rich-deps.ts';
import { nevra, SenseFlags, type Dependency, type RpmPackage } from '../packages/rpm.ts';
import { compareEvr, rangesOverlap } from './rpm-version.ts';

export interface ClosureInput {
  variant: string;
  /** Capability names each root must resolve, e.g. `bottlerocket-hello`. */
  roots: string[];
  available: RpmPackage[];
  /** Capabilities the variant's metadata provides (variant, platform, image features, …). */
  metadataProvides: Dependency[];
}

export interface UnmetRequirement {
  /** The package that requires it, or `variant <name>` for a root. */
  requiredBy: string;
  requirement: string;
}

export type ClosureResult =
  | { ok: true; packages: RpmPackage[] }
  | { ok: false; unmet: UnmetRequirement[] };

class Unmet extends Error {}

/**
 * Resolves the closure like `dnf install` would for a fresh root: the highest version of each
 * name, exact-name providers first, conditions evaluated against what is already chosen until
 * nothing changes. Unmet requirements are returned (so a caller can build more packages);
 * conflicts throw.
 */
export function resolveClosure(input: ClosureInput): ClosureResult {
  const newest = new Map<string, RpmPackage>();
  for (const pkg of input.available) {
    const current = newest.get(pkg.name);
    if (current === undefined || compareEvr(evrOf(pkg), evrOf(current)) > 0) newest.set(pkg.name, pkg);
  }
  const candidates = [...newest.values()].sort((a, b) => a.name.localeCompare(b.name));
  const selected = new Map<string, RpmPackage>();
  const unmet: UnmetRequirement[] = [];

  const satisfiedByMetadata = (dep: DepLeaf): boolean =>
    input.metadataProvides.some((p) => p.name === dep.name && rangesOverlap(dep.flags, dep.version, p.flags, p.version));
  const satisfiedBySelected = (dep: DepLeaf, except?: RpmPackage): boolean =>
    satisfiedByMetadata(dep) || [...selected.values()].some((pkg) => pkg !== except && provides(pkg, dep));
  const evaluate = (tree: DepTree, except?: RpmPackage): boolean => {
    switch (tree.kind) {
      case 'dep': return satisfiedBySelected(tree, except);
      case 'and': case 'with': return tree.terms.every((t) => evaluate(t, except));
      case 'or': return tree.terms.some((t) => evaluate(t, except));
      case 'without': return evaluate(tree.terms[0] as DepTree, except) && !tree.terms.slice(1).some((t) => evaluate(t, except));
      case 'if': return evaluate(tree.condition, except) ? evaluate(tree.then, except) : tree.otherwise === undefined || evaluate(tree.otherwise, except);
      case 'unless': return !evaluate(tree.condition, except) ? evaluate(tree.then, except) : tree.otherwise === undefined || evaluate(tree.otherwise, except);
    }
  };
  const fulfil = (tree: DepTree): RpmPackage[] => {
    switch (tree.kind) {
      case 'dep': {
        if (satisfiedBySelected(tree)) return [];
        const provider = candidates
          .filter((pkg) => provides(pkg, tree))
          .sort((a, b) => Number(b.name === tree.name) - Number(a.name === tree.name))[0];
        if (provider === undefined) throw new Unmet(describeLeaf(tree));
        return [provider];
      }
      case 'and': case 'with': return tree.terms.flatMap(fulfil);
      case 'without': return fulfil(tree.terms[0] as DepTree);
      case 'or': {
        if (evaluate(tree)) return [];
        let firstFailure: Unmet | undefined;
        for (const term of tree.terms) {
          try {
            return fulfil(term);
          } catch (error) {
            if (!(error instanceof Unmet)) throw error;
            firstFailure ??= error;
          }
        }
        throw firstFailure ?? new Unmet('(empty or)');
      }
      case 'if': case 'unless': {
        const holds = evaluate(tree.condition) === (tree.kind === 'if');
        if (holds) return fulfil(tree.then);
        return tree.otherwise === undefined ? [] : fulfil(tree.otherwise);
      }
    }
  };
  const add = (pkgs: RpmPackage[]): boolean => {
    let added = false;
    for (const pkg of pkgs) {
      if (!selected.has(pkg.name)) {
        selected.set(pkg.name, pkg);
        added = true;
      }
    }
    return added;
  };

  for (const root of input.roots) {
    try {
      add(fulfil({ kind: 'dep', name: root, flags: 0, version: '' }));
    } catch (error) {
      if (!(error instanceof Unmet)) throw error;
      unmet.push({ requiredBy: `variant ${input.variant}`, requirement: root });
    }
  }
  const unmetKeys = new Set<string>();
  for (let changed = true; changed;) {
    changed = false;
    for (const pkg of [...selected.values()]) {
      for (const requirement of pkg.requires) {
        if (isIgnored(requirement)) continue;
        try {
          if (add(fulfil(treeOf(requirement, pkg)))) changed = true;
        } catch (error) {
          if (!(error instanceof Unmet)) throw error;
          const key = `${pkg.name}\0${requirement.name}`;
          if (!unmetKeys.has(key)) {
            unmetKeys.add(key);
            unmet.push({ requiredBy: nevra(pkg), requirement: describeLeaf(requirement) });
          }
        }
      }
    }
  }
  if (unmet.length > 0) return { ok: false, unmet };

  for (const pkg of selected.values()) {
    for (const conflict of pkg.conflicts) {
      if (!evaluate(treeOf(conflict, pkg), pkg)) continue;
      const feature = /^bottlerocket-image-feature\((.+)\)$/.exec(conflict.name)?.[1];
      const viaFeature = feature !== undefined && satisfiedByMetadata({ kind: 'dep', name: conflict.name, flags: 0, version: '' });
      throw new BrlError(
        viaFeature
          ? `conflicting features: package ${nevra(pkg)} conflicts with image feature "${feature.replace(/^no-/, '')}" ${feature.startsWith('no-') ? 'being disabled' : 'being enabled'} in variant ${input.variant}`
          : `package ${nevra(pkg)} conflicts with "${describeLeaf(conflict)}", which another package in variant ${input.variant} provides`,
        {
          hint: viaFeature
            ? `change image-features in variants/${input.variant}/variant.toml, or drop the package from included-packages`
            : 'remove one of the two packages from included-packages or from the dependency chain',
          exitCode: ExitCode.conflict,
          code: viaFeature ? 'CONFLICTING_FEATURES' : 'PACKAGE_CONFLICT',
        },
      );
    }
  }
  return { ok: true, packages: [...selected.values()].sort((a, b) => a.name.localeCompare(b.name)) };
}

type DepLeaf = { kind?: 'dep'; name: string; flags: number; version: string };

function provides(pkg: RpmPackage, dep: DepLeaf): boolean {
  if (dep.name.startsWith('/')) return pkg.files.includes(dep.name);
  if (pkg.name === dep.name && rangesOverlap(dep.flags, dep.version, SenseFlags.equal, evrString(pkg))) return true;
  return pkg.provides.some((p) => p.name === dep.name && rangesOverlap(dep.flags, dep.version, p.flags, p.version));
}

function treeOf(dependency: Dependency, pkg: RpmPackage): DepTree {
  if (!dependency.name.startsWith('(')) return { kind: 'dep', ...dependency };
  try {
    return parseRichDependency(dependency.name);
  } catch (error) {
    throw new BrlError(`package ${nevra(pkg)} has a malformed rich dependency: ${(error as Error).message}`, {
      exitCode: ExitCode.badInput,
      code: 'BAD_RICH_DEPENDENCY',
    });
  }
}

/** rpmlib() features and scriptlet interpreters do not apply: brl installs without scriptlets. */
function isIgnored(dependency: Dependency): boolean {
  return dependency.name.startsWith('rpmlib(') || (dependency.flags & (SenseFlags.rpmlib | SenseFlags.interpreter)) !== 0;
}

function describeLeaf(dep: DepLeaf): string {
  const sense = dep.flags & (SenseFlags.less | SenseFlags.greater | SenseFlags.equal);
  if (sense === 0 || dep.version === '') return dep.name;
  const op = `${sense & SenseFlags.less ? '<' : ''}${sense & SenseFlags.greater ? '>' : ''}${sense & SenseFlags.equal ? '=' : ''}`;
  return `${dep.name} ${op} ${dep.version}`;
}

function evrOf(pkg: RpmPackage): { epoch: number; version: string; release: string } {
  return { epoch: pkg.epoch ?? 0, version: pkg.version, release: pkg.release };
}

function evrString(pkg: RpmPackage): string {
  return `${pkg.epoch === undefined ? '' : `${pkg.epoch}:`}${pkg.version}-${pkg.release}`;
}

/** One sentence per unmet requirement, for the error a caller raises when it cannot build more. */
export function unmetError(variant: string, unmet: UnmetRequirement[]): BrlError {
  const lines = unmet.map((u) => `${u.requiredBy} requires "${u.requirement}", which no package provides`);
  return new BrlError(`cannot resolve the packages of variant ${variant}: ${lines.join('; ')}`, {
    hint: 'add a package that provides it under packages-specs/, or fix the Requires in the spec',
    exitCode: ExitCode.buildFailed,
    code: 'MISSING_DEPENDENCY',
  });
}
