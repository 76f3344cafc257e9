import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildPackages } from '../../../src/lib/packages/build.ts';
import { changedInputs, collectInputs } from '../../../src/lib/packages/cache-key.ts';
import { loadPackage, parsePackageManifest } from '../../../src/lib/packages/manifest.ts';
import { parseToml } from '../../../src/lib/core/toml.ts';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { makeProject, writePackage } from './project.ts';

const parse = (text: string) => parsePackageManifest(parseToml('/p/package.toml', text), 'pkg', '/p', '/p/pkg.spec');

test('source-groups are project-relative directories, deduplicated and sorted', (t) => {
  t.deepEqual(parse('source-groups = ["src/lib/host", "node_modules/@scope/x", "src/bin", "src/bin"]').sourceGroups, [
    'node_modules/@scope/x',
    'src/bin',
    'src/lib/host',
  ]);
  t.deepEqual(parse('').sourceGroups, []);
});

test('refuses source groups outside the project, unnormalized or inside another group, naming file, line and key', (t) => {
  for (const bad of ['../outside', '/abs/path', 'src//lib', './src', 'src/..', '']) {
    const error = t.throws(() => parse(`\nsource-groups = ["${bad}"]`), { instanceOf: BrlError });
    t.regex(error?.message ?? '', /\/p\/package\.toml:2.*source-groups.*must be a directory inside the project/, bad);
  }
  const nested = t.throws(() => parse('source-groups = ["src", "src/lib"]'), { instanceOf: BrlError });
  t.regex(nested?.message ?? '', /"src\/lib" is inside "src"; list only "src"/);
});

const context = { arch: 'x86_64' as const, toolchain: 'rpm 4.18; gcc 12', macroFile: '%_cross_os bottlerocket-\n', dependencyRpms: {} };

/** A project whose package `reader` reads `tools/` (a source group) at build time. */
function readerProject(): string {
  const projectDir = makeProject([]);
  mkdirSync(join(projectDir, 'tools', 'sub'), { recursive: true });
  writeFileSync(join(projectDir, 'tools', 'greeting.txt'), 'hello from the project\n');
  writeFileSync(join(projectDir, 'tools', 'sub', 'other.txt'), 'x\n');
  writePackage(projectDir, 'reader', {
    'package.toml': 'source-groups = ["tools"]\n',
    'reader.spec': `Name: %{_cross_os}reader
Version: 1.0
Release: 1%{?dist}
Summary: reads a source group
License: MIT
BuildArch: noarch

%description
Test package.

%build
cp %{_cross_sourcesdir}/tools/greeting.txt greeting.txt
# The group is read-only: a build that writes into it must fail, not change the project.
if touch %{_cross_sourcesdir}/tools/written-by-build 2>/dev/null; then echo "source group is writable" >&2; exit 1; fi

%install
install -D -m 0644 greeting.txt %{buildroot}%{_cross_datadir}/reader/greeting.txt

%files
%{_cross_datadir}/reader/greeting.txt
`,
  });
  return projectDir;
}

test('a source group is in the cache key: a changed file is named as the reason, packages without groups keep their keys', async (t) => {
  const projectDir = readerProject();
  writePackage(projectDir, 'plain', { 'plain.spec': 'Name: plain\n' });
  const plain = await collectInputs(await loadPackage(projectDir, 'plain'), context);
  t.false('sourceGroups' in plain);

  const before = await collectInputs(await loadPackage(projectDir, 'reader'), context);
  t.deepEqual(Object.keys(before.sourceGroups ?? {}), ['tools']);
  writeFileSync(join(projectDir, 'tools', 'sub', 'other.txt'), 'y\n');
  const after = await collectInputs(await loadPackage(projectDir, 'reader'), context);
  t.not(after.sourceGroups?.tools, before.sourceGroups?.tools);
  t.deepEqual(changedInputs(before, after), ['sourceGroups: tools']);
});

test('the build reads its source groups read-only, and rebuilds when one changes', async (t) => {
  const projectDir = readerProject();
  const first = await buildPackages(projectDir, { names: ['reader'], progress: 'silent' });
  const [built] = first.packages;
  t.is(built?.status, 'built', `${built?.error}\n${built?.logTail?.join('\n')}`);
  const root = join(projectDir, 'installed');
  execFileSync('rpm', ['--root', root, '--dbpath', '/.rpmdb', '-i', '--nodeps', '--noscripts', '--nosignature', built?.rpms[0] as string]);
  t.is(readFileSync(join(root, 'x86_64-bottlerocket-linux-gnu/sys-root/usr/share/reader/greeting.txt'), 'utf8'), 'hello from the project\n');
  t.false(existsSync(join(projectDir, 'tools', 'written-by-build')));

  t.is((await buildPackages(projectDir, { names: ['reader'], progress: 'silent' })).packages[0]?.status, 'cached');
  writeFileSync(join(projectDir, 'tools', 'greeting.txt'), 'changed\n');
  const rebuilt = (await buildPackages(projectDir, { names: ['reader'], progress: 'silent' })).packages[0];
  t.is(rebuilt?.status, 'built');
  t.deepEqual(rebuilt?.rebuildReasons, ['sourceGroups: tools']);
});

test('a source group missing from the project is an error naming package.toml and the group', async (t) => {
  const projectDir = makeProject([]);
  writePackage(projectDir, 'needs', { 'package.toml': 'source-groups = ["node_modules/absent"]\n', 'needs.spec': 'Name: needs\n' });
  const error = await t.throwsAsync(collectInputs(await loadPackage(projectDir, 'needs'), context), { instanceOf: BrlError });
  t.regex(error?.message ?? '', /packages-specs\/needs\/package\.toml: source-groups: "node_modules\/absent" is not a directory/);
  t.is((error as BrlError).code, 'MISSING_SOURCE_GROUP');
  t.regex((error as BrlError).hint ?? '', /npm ci/);
});
