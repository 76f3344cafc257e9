import test from 'ava';
import { execFile } from 'node:child_process';
import { missingAptTool } from '../../../src/lib/debian/apt-tool.ts';
import { parseRelations, parseStanzas } from '../../../src/lib/debian/control.ts';
import type { BinaryPackage, PackageIndex } from '../../../src/lib/debian/indices.ts';
import { resolveClosure } from '../../../src/lib/debian/resolve.ts';

const index: PackageIndex = { file: 'Packages', repoUri: 'http://deb.example/debian/', codename: 'bookworm', suite: 'stable', component: 'main', architecture: 'amd64' };

/** A universe from deb822 text, as an apt index would give it. */
function universe(text: string): BinaryPackage[] {
  return parseStanzas(text).map((stanza) => ({
    name: stanza.get('Package') as string,
    version: stanza.get('Version') as string,
    architecture: stanza.get('Architecture') ?? 'amd64',
    source: stanza.get('Package') as string,
    essential: false,
    depends: parseRelations(stanza.get('Depends')),
    preDepends: parseRelations(stanza.get('Pre-Depends')),
    provides: parseRelations(stanza.get('Provides')),
    url: `http://deb.example/debian/pool/${stanza.get('Package')}.deb`,
    size: 1,
    sha256: '0'.repeat(64),
    index,
  }));
}

const packages = universe(`
Package: app
Version: 1.0
Depends: libfoo (>= 2.0), libc6 (>= 2.34), mail-transport-agent | exim4, libbar:any
Pre-Depends: libzero

Package: libfoo
Version: 1.9
Depends: libc6

Package: libfoo
Version: 2.1
Architecture: amd64
Depends: libc6, libfoo-common (= 2.1)

Package: libfoo
Version: 3.0
Architecture: arm64

Package: libfoo-common
Version: 2.1
Architecture: all

Package: postfix
Version: 3.7
Provides: mail-transport-agent

Package: exim4
Version: 4.96

Package: libbar
Version: 1.0

Package: libzero
Version: 0.1

Package: libc6
Version: 2.36
`);

const exclude = new Map([['libc6', 'the glibc package ships it']]);

test('the closure takes the highest version of the target architecture and follows Depends, Pre-Depends and Provides', (t) => {
  const closure = resolveClosure(packages, { roots: ['app'], exclude, architecture: 'amd64', where: 'test' });
  t.deepEqual(
    closure.packages.map(({ pkg }) => `${pkg.name} ${pkg.version}`),
    ['app 1.0', 'libbar 1.0', 'libfoo 2.1', 'libfoo-common 2.1', 'libzero 0.1', 'postfix 3.7'],
  );
  t.deepEqual(closure.packages.find(({ pkg }) => pkg.name === 'libfoo')?.requiredBy, ['app']);
  t.deepEqual(closure.packages.find(({ pkg }) => pkg.name === 'app')?.requiredBy, ['(root)']);
  t.deepEqual(closure.excluded, [{ name: 'libc6', reason: 'the glibc package ships it', requiredBy: ['app', 'libfoo'] }]);
  t.deepEqual(closure.unusedExcludes, []);
});

test('an alternative already chosen wins over the first one', (t) => {
  const closure = resolveClosure(packages, { roots: ['app', 'exim4'], exclude, architecture: 'amd64', where: 'test' });
  const names = closure.packages.map(({ pkg }) => pkg.name);
  t.true(names.includes('exim4'));
  t.false(names.includes('postfix'));
});

test('an unsatisfiable version names the package, the relation and the candidates', (t) => {
  const broken = universe('Package: app\nVersion: 1\nDepends: libfoo (>= 9)\n\nPackage: libfoo\nVersion: 2.1\n');
  const error = t.throws(() => resolveClosure(broken, { roots: ['app'], exclude: new Map(), architecture: 'amd64', where: 'pkg/package.toml [debian]' }));
  t.is(error?.message, 'pkg/package.toml [debian]: app 1 needs libfoo (>= 9), which the apt indices cannot satisfy (candidates: libfoo 2.1)');
});

test('unknown roots and roots that are also excluded are refused; unused excludes are reported', (t) => {
  t.throws(() => resolveClosure(packages, { roots: ['nope'], exclude, architecture: 'amd64', where: 'w' }), { message: /root package "nope" is in no apt index for amd64/ });
  t.throws(() => resolveClosure(packages, { roots: ['libc6'], exclude, architecture: 'amd64', where: 'w' }), { message: /"libc6" is both a root and excluded/ });
  const closure = resolveClosure(packages, { roots: ['libbar'], exclude, architecture: 'amd64', where: 'w' });
  t.deepEqual(closure.unusedExcludes, ['libc6']);
});

test('relation fields parse qualifiers, obsolete operators and alternatives', (t) => {
  t.deepEqual(parseRelations('a:any (>= 1), b (< 2) | c, d [amd64]'), [
    [{ name: 'a', qualifier: 'any', version: { operator: '>=', value: '1' } }],
    [{ name: 'b', version: { operator: '<=', value: '2' } }, { name: 'c' }],
    [{ name: 'd' }],
  ]);
  t.throws(() => parseRelations('Bad Name', 'x Depends'), { message: /cannot parse x Depends "Bad Name"/ });
});

test('a missing apt tool is an expected error naming the tool and the task; other failures pass through', async (t) => {
  const spawnError = await new Promise<unknown>((resolve) => execFile('/nonexistent/apt-get', [], (error) => resolve(error)));
  const error = missingAptTool(spawnError, 'apt-get', 'read Debian package metadata');
  t.is(error?.message, 'cannot read Debian package metadata: apt-get is not installed');
  t.is(error?.code, 'MISSING_HOST_TOOL');
  t.is(missingAptTool(new Error('exit 100'), 'apt-get', 'x'), undefined);
});
