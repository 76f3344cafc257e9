import test from 'ava';
import { BrlError, ExitCode } from '../../../src/lib/core/errors.ts';
import { dependencyClosure, resolveBuildGraph } from '../../../src/lib/packages/graph.ts';
import type { PackageDefinition } from '../../../src/lib/packages/manifest.ts';

function pkg(name: string, buildDependencies: string[] = []): PackageDefinition {
  return {
    name,
    dir: `/p/${name}`,
    specPath: `/p/${name}/${name}.spec`,
    manifestPath: `/p/${name}/package.toml`,
    externalFiles: [],
    buildDependencies,
    hardeningExceptions: [],
  };
}

const all = [pkg('release'), pkg('glibc', ['release']), pkg('hello', ['glibc', 'release']), pkg('kernel'), pkg('tools', ['hello'])];

test('orders the selection and its build-dependency closure dependencies first', (t) => {
  const graph = resolveBuildGraph(all, ['tools']);
  t.deepEqual(graph.order.map((definition) => definition.name), ['release', 'glibc', 'hello', 'tools']);
  t.deepEqual(graph.dependencies.get('hello'), ['glibc', 'release']);
});

test('leaves out packages nothing selected depends on', (t) => {
  const graph = resolveBuildGraph(all, ['glibc']);
  t.deepEqual(graph.order.map((definition) => definition.name), ['release', 'glibc']);
});

test('the sysroot closure holds transitive build dependencies once, dependencies first', (t) => {
  const graph = resolveBuildGraph(all, ['tools']);
  t.deepEqual(dependencyClosure(graph, 'tools'), ['release', 'glibc', 'hello']);
  t.deepEqual(dependencyClosure(graph, 'release'), []);
});

test('a cycle is an error naming every package on it', (t) => {
  const cyclic = [pkg('a', ['b']), pkg('b', ['c']), pkg('c', ['a']), pkg('d', ['a'])];
  const error = t.throws(() => resolveBuildGraph(cyclic, ['d']), { instanceOf: BrlError });
  t.is(error?.exitCode, ExitCode.badInput);
  t.is(error?.message, 'build-dependency cycle: a → b → c → a');
});

test('a package depending on itself is a cycle', (t) => {
  const error = t.throws(() => resolveBuildGraph([pkg('a', ['a'])], ['a']), { instanceOf: BrlError });
  t.is(error?.message, 'build-dependency cycle: a → a');
});

test('an unknown build dependency names the manifest and the package that needs it', (t) => {
  const error = t.throws(() => resolveBuildGraph([pkg('hello', ['glibc'])], ['hello']), { instanceOf: BrlError });
  t.is(error?.code, 'UNKNOWN_BUILD_DEPENDENCY');
  t.regex(error?.message ?? '', /\/p\/hello\/package\.toml: build-dependencies: unknown package "glibc" \(needed by "hello"\)/);
  t.is(error?.hint, 'known packages: hello');
});

test('an unknown selected package lists the known ones', (t) => {
  const error = t.throws(() => resolveBuildGraph(all, ['nope']), { instanceOf: BrlError });
  t.is(error?.exitCode, ExitCode.notFound);
  t.is(error?.hint, 'known packages: glibc, hello, kernel, release, tools');
});
