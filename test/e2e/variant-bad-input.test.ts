import test from 'ava';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../../src/lib/core/errors.ts';
import { buildPackages } from '../../src/lib/packages/build.ts';
import { buildVariant } from '../../src/lib/variant/build.ts';
import { brl } from '../helpers/cli.ts';
import { buildEnv, makeProject, minimalVariant, type Fixture } from '../lib/variant/project-fixture.ts';

// Each test gets its own project: builds must not see each other's packages.
const projects: Fixture[] = [];
test.after.always(() => {
  for (const project of projects) rmSync(project.dir, { recursive: true, force: true });
});
function freshProject(): Fixture {
  const project = makeProject();
  projects.push(project);
  return project;
}

const tinySpec = (name: string, lines: string[], install = ''): string => [
  `Name: %{_cross_os}${name}`, 'Version: 1.0', 'Release: 1%{?dist}', `Summary: ${name} for bad-input tests`, 'License: MIT', 'BuildArch: noarch',
  ...lines, '%description', 'test', '%prep', '%build', '%install', `install -d %{buildroot}%{_cross_datadir}/${name}`, install,
  '%files', `%{_cross_datadir}/${name}`, '',
].join('\n');

/** Nothing of a failed build may remain: no version directory, no latest link, no temp directory. */
function assertNothingLeft(t: { deepEqual: (a: unknown, b: unknown, m?: string) => void }, project: Fixture, variant: string): void {
  const dir = join(project.dir, 'build', 'images', `x86_64-${variant}`);
  t.deepEqual(existsSync(dir) ? readdirSync(dir) : [], [], `${dir} is empty or absent`);
}

async function failure(project: Fixture, variant: string, arch = 'x86_64'): Promise<BrlError> {
  try {
    await buildVariant(project.dir, variant, { arch, progress: 'silent', env: buildEnv() });
  } catch (error) {
    if (error instanceof BrlError) return error;
    throw error;
  }
  throw new Error(`building ${variant} succeeded`);
}

test('a variant naming an unknown package fails before building anything', async (t) => {
  const project = freshProject();
  project.addVariant('test-unknown', 'included-packages = ["release", "no-such-package"]\n');
  const error = await failure(project, 'test-unknown');
  t.is(error.code, 'UNKNOWN_PACKAGE');
  t.is(error.exitCode, ExitCode.notFound);
  t.regex(error.message, /variant test-unknown includes unknown package "no-such-package"/);
  t.regex(error.hint ?? '', /known packages: .*minimal-kernel/);
  assertNothingLeft(t, project, 'test-unknown');
});

test('an unsupported arch is an error naming the supported ones', async (t) => {
  const project = freshProject();
  project.addVariant('test-x86only', minimalVariant());
  const error = await failure(project, 'test-x86only', 'aarch64');
  t.is(error.code, 'UNSUPPORTED_ARCH');
  t.is(error.exitCode, ExitCode.badInput);
  t.regex(error.message, /variant test-x86only does not support aarch64 \(supported-arches: x86_64\)/);
  t.is((await failure(project, 'test-x86only', 'riscv64')).code, 'BAD_ARCH');
  assertNothingLeft(t, project, 'test-x86only');
});

test('the CLI reports an unsupported arch as a JSON error with exit code 3', async (t) => {
  const project = freshProject();
  project.addVariant('test-cli-arch', minimalVariant());
  const run = await brl(['build', 'variant', 'test-cli-arch', '--arch', 'aarch64', '--json'], { cwd: project.dir, env: buildEnv() });
  t.is(run.exitCode, ExitCode.badInput);
  const body = JSON.parse(run.stdout) as { error: { code: string; message: string } };
  t.is(body.error.code, 'UNSUPPORTED_ARCH');
});

test('a package that conflicts with an enabled feature is a conflicting-features error', async (t) => {
  const project = freshProject();
  project.addPackage('test-nofips', tinySpec('test-nofips', ['Conflicts: %{_cross_os}image-feature(fips)']));
  project.addVariant('test-conflict', `included-packages = ["release", "minimal-kernel", "test-nofips"]\n[image-features]\nfips = true\n`);
  const error = await failure(project, 'test-conflict');
  t.is(error.code, 'CONFLICTING_FEATURES');
  t.is(error.exitCode, ExitCode.conflict);
  t.regex(error.message, /bottlerocket-test-nofips-1\.0-.* conflicts with image feature "fips" being enabled in variant test-conflict/);
  assertNothingLeft(t, project, 'test-conflict');
});

test('a missing runtime dependency names the package and the requirement', async (t) => {
  const project = freshProject();
  project.addPackage('test-needy', tinySpec('test-needy', ['Requires: %{_cross_os}libmissing >= 2']));
  project.addVariant('test-needy', 'included-packages = ["release", "minimal-kernel", "test-needy"]\n');
  const error = await failure(project, 'test-needy');
  t.is(error.code, 'MISSING_DEPENDENCY');
  t.regex(error.message, /bottlerocket-test-needy-1\.0-\S+ requires "bottlerocket-libmissing >= 2", which no package provides/);
  assertNothingLeft(t, project, 'test-needy');
});

test('uefi-secure-boot without Secure Boot keys configured stops the build before anything is written', async (t) => {
  const project = freshProject();
  project.addVariant('test-secureboot', minimalVariant('[image-features]\nuefi-secure-boot = true'));
  const error = await failure(project, 'test-secureboot');
  t.is(error.code, 'NO_SECURE_BOOT_KEYS');
  t.regex(error.hint ?? '', /brl keys secure-boot init/);
  assertNothingLeft(t, project, 'test-secureboot');
});

test('uefi-secure-boot on aarch64 is refused before keys are loaded or anything is built, naming the variant file', async (t) => {
  const project = freshProject();
  project.addVariant('test-secureboot-arm', minimalVariant('[image-features]\nuefi-secure-boot = true').replace('supported-arches = ["x86_64"]', 'supported-arches = ["x86_64", "aarch64"]'));
  const error = await failure(project, 'test-secureboot-arm', 'aarch64');
  t.is(error.code, 'UNSUPPORTED_ARCH');
  t.is(error.exitCode, ExitCode.badInput);
  t.regex(error.message, /variant test-secureboot-arm: uefi-secure-boot is built for x86_64 only, not aarch64/);
  t.regex(error.hint ?? '', /variants\/test-secureboot-arm\/variant\.toml/);
  t.false(existsSync(join(project.dir, 'build', 'images', 'aarch64-test-secureboot-arm')));
});

test('the api-bridge feature without the package that ships its unit is an error naming both', async (t) => {
  const project = freshProject();
  project.addVariant('test-bridge', minimalVariant('[image-features]\napi-bridge = true'));
  const error = await failure(project, 'test-bridge');
  t.is(error.code, 'FEATURE_NEEDS_PACKAGE');
  t.regex(error.message, /api-bridge image feature needs \/usr\/lib\/systemd\/system\/api-bridge\.service/);
  assertNothingLeft(t, project, 'test-bridge');
});

test('a root that does not fit ROOT-A says by how much, and leaves nothing behind', async (t) => {
  const project = freshProject();
  // 480 MiB of incompressible data cannot fit the 460 MiB ROOT-A of a 1 GiB image.
  project.addPackage('test-huge', tinySpec('test-huge', [], 'head -c 480M /dev/urandom > %{buildroot}%{_cross_datadir}/test-huge/blob'));
  project.addVariant('test-huge', minimalVariant().replace('"minimal-policy"]', '"minimal-policy", "test-huge"]'));
  const error = await failure(project, 'test-huge');
  t.is(error.code, 'ROOT_TOO_BIG');
  const [, needed, holds, over] = /needs at least ([\d.]+) MiB but ROOT-A holds (\d+) MiB \(([\d.]+) MiB too big\)/.exec(error.message) ?? [];
  t.is(Number(holds), 460);
  t.true(Number(needed) > 480 && Number(needed) < 520, error.message);
  t.is(Number(over), Number((Number(needed) - 460).toFixed(1)));
  assertNothingLeft(t, project, 'test-huge');
});

test('a corrupt RPM in the package cache is an error naming the file, and leaves nothing behind', async (t) => {
  const project = freshProject();
  project.addPackage('test-victim', tinySpec('test-victim', [], 'echo payload > %{buildroot}%{_cross_datadir}/test-victim/file'));
  project.addVariant('test-corrupt', 'included-packages = ["release", "minimal-kernel", "test-victim"]\n');
  const built = await buildPackages(project.dir, { names: ['test-victim'], progress: 'silent' });
  const rpm = built.packages.find((pkg) => pkg.name === 'test-victim')?.rpms[0];
  if (rpm === undefined) {
    t.fail(`test-victim built no RPM: ${JSON.stringify(built.packages.map((pkg) => pkg.name))}`);
    return;
  }
  // Same size, different bytes: the cache still believes its outputs, the digests do not.
  const bytes = readFileSync(rpm);
  bytes.fill(0x5a, bytes.length - 48, bytes.length - 16);
  writeFileSync(rpm, bytes);
  const error = await failure(project, 'test-corrupt');
  t.is(error.code, 'CORRUPT_RPM');
  t.true(error.message.includes(rpm), error.message);
  assertNothingLeft(t, project, 'test-corrupt');
});
