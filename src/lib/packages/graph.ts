// The build-dependency graph: which packages a request needs, in an order that builds dependencies first.
import { BrlError, ExitCode } from '../core/errors.ts';
import type { PackageDefinition } from './manifest.ts';

export interface BuildGraph {
  /** Every package the request needs (the selection plus its build-dependency closure), dependencies first. */
  order: PackageDefinition[];
  /** name → direct build dependencies. */
  dependencies: Map<string, string[]>;
}

/**
 * Resolves `selected` against `all`: unknown names (selected or depended on) and cycles are errors.
 * The order is deterministic: a depth-first post-order visiting names alphabetically.
 */
export function resolveBuildGraph(all: readonly PackageDefinition[], selected: readonly string[]): BuildGraph {
  const byName = new Map(all.map((definition) => [definition.name, definition]));
  const known = [...byName.keys()].sort();
  for (const name of selected) {
    if (!byName.has(name)) {
      throw new BrlError(`unknown package "${name}"`, {
        hint: known.length > 0 ? `known packages: ${known.join(', ')}` : 'the project has no packages in packages-specs/',
        exitCode: ExitCode.notFound,
        code: 'UNKNOWN_PACKAGE',
      });
    }
  }
  const order: PackageDefinition[] = [];
  const dependencies = new Map<string, string[]>();
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];

  const visit = (name: string): void => {
    const seen = state.get(name);
    if (seen === 'done') return;
    if (seen === 'visiting') {
      const cycle = [...path.slice(path.indexOf(name)), name];
      throw new BrlError(`build-dependency cycle: ${cycle.join(' → ')}`, {
        hint: 'remove one of these build-dependencies from its package.toml',
        exitCode: ExitCode.badInput,
        code: 'DEPENDENCY_CYCLE',
      });
    }
    const definition = byName.get(name) as PackageDefinition;
    state.set(name, 'visiting');
    path.push(name);
    const direct = [...new Set(definition.buildDependencies)].sort();
    for (const dependency of direct) {
      if (!byName.has(dependency)) {
        throw new BrlError(`${definition.manifestPath}: build-dependencies: unknown package "${dependency}" (needed by "${name}")`, {
          hint: known.length > 0 ? `known packages: ${known.join(', ')}` : 'the project has no packages in packages-specs/',
          exitCode: ExitCode.badInput,
          code: 'UNKNOWN_BUILD_DEPENDENCY',
        });
      }
      visit(dependency);
    }
    path.pop();
    state.set(name, 'done');
    dependencies.set(name, direct);
    order.push(definition);
  };

  for (const name of [...new Set(selected)].sort()) visit(name);
  return { order, dependencies };
}

/** Every package `name` needs in its sysroot: its build dependencies and theirs, dependencies first. */
export function dependencyClosure(graph: BuildGraph, name: string): string[] {
  const closure = new Set<string>();
  const add = (current: string): void => {
    for (const dependency of graph.dependencies.get(current) ?? []) {
      if (closure.has(dependency)) continue;
      add(dependency);
      closure.add(dependency);
    }
  };
  add(name);
  return [...closure];
}
