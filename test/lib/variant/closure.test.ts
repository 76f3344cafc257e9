import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../../../src/lib/core/errors.ts';
import { resolveClosure, unmetError } from '../../../src/lib/variant/closure.ts';
import { defaultImageFeatures } from '../../../src/lib/variant/features.ts';
import { metadataCapabilities } from '../../../src/lib/variant/metadata.ts';
import { parseVariantName } from '../../../src/lib/variant/name.ts';
import { queryRpm, type RpmPackage } from '../../../src/lib/packages/rpm.ts';
import { compareEvr, parseEvr, rpmVersionCompare } from '../../../src/lib/variant/rpm-version.ts';

const topDir = mkdtempSync(join(tmpdir(), 'brl-closure-rpms-'));
test.after.always(() => rmSync(topDir, { recursive: true, force: true }));

/** Builds a tiny noarch RPM with rpmbuild; `deps` are spec lines (Requires:, Provides:, …). */
function buildRpm(name: string, version: string, deps: string[] = []): string {
  const spec = join(topDir, `${name}-${version}.spec`);
  writeFileSync(spec, [
    `Name: ${name}`, `Version: ${version}`, 'Release: 1', `Summary: test package ${name}`, 'License: MIT', 'BuildArch: noarch',
    'Group: System/Test', 'URL: https://example.invalid/', ...deps, '%description', 'test', '%install',
    `mkdir -p %{buildroot}/usr/share/${name}`, `echo ${name} > %{buildroot}/usr/share/${name}/file`, '%files', `/usr/share/${name}/file`, '',
  ].join('\n'));
  execFileSync('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${topDir}`, spec], { stdio: 'ignore' });
  const rpm = readdirSync(join(topDir, 'RPMS', 'noarch')).find((file) => file.startsWith(`${name}-${version}-`));
  return join(topDir, 'RPMS', 'noarch', rpm as string);
}

const caps = (variant: string, features: Partial<typeof defaultImageFeatures> = {}) =>
  metadataCapabilities(variant, parseVariantName(variant), { ...defaultImageFeatures, ...features });

let pkgs: Record<string, RpmPackage>;
test.before(async () => {
  const paths = {
    base: buildRpm('bottlerocket-base', '1.0'),
    baseOld: buildRpm('bottlerocket-base', '0.9'),
    app: buildRpm('bottlerocket-app', '2.0', ['Requires: bottlerocket-base >= 1.0', 'Requires: (bottlerocket-awsbits if bottlerocket-variant-platform(aws))']),
    awsbits: buildRpm('bottlerocket-awsbits', '1.0'),
    needy: buildRpm('bottlerocket-needy', '1.0', ['Requires: bottlerocket-libmissing >= 2']),
    nofips: buildRpm('bottlerocket-nofips', '1.0', ['Conflicts: bottlerocket-image-feature(fips)']),
    fipsOnly: buildRpm('bottlerocket-fipsbin', '1.0', ['Requires: (bottlerocket-fips-helper or bottlerocket-base)', 'Provides: fips-provider = 3']),
  };
  pkgs = Object.fromEntries(await Promise.all(Object.entries(paths).map(async ([key, path]) => [key, await queryRpm(path)] as const)));
});

test('reads identity, licence, checksum and dependencies from an RPM header', (t) => {
  const app = pkgs.app as RpmPackage;
  t.is(app.name, 'bottlerocket-app');
  t.is(app.version, '2.0');
  t.is(app.release, '1');
  t.is(app.arch, 'noarch');
  t.is(app.license, 'MIT');
  t.is(app.group, 'System/Test');
  t.regex(app.sha256, /^[0-9a-f]{64}$/);
  t.true(app.requires.some((dep) => dep.name === 'bottlerocket-base' && dep.version === '1.0'));
  t.true(app.requires.some((dep) => dep.name.startsWith('(bottlerocket-awsbits if')));
  t.deepEqual(app.files, ['/usr/share/bottlerocket-app/file']);
});

test('resolves versioned requirements to the newest package of each name', (t) => {
  const result = resolveClosure({
    variant: 'metal-dev', roots: ['bottlerocket-app'], metadataProvides: caps('metal-dev'),
    available: [pkgs.baseOld, pkgs.base, pkgs.app, pkgs.awsbits].map((pkg) => pkg as RpmPackage),
  });
  t.true(result.ok);
  if (!result.ok) return;
  t.deepEqual(result.packages.map((pkg) => `${pkg.name}-${pkg.version}`), ['bottlerocket-app-2.0', 'bottlerocket-base-1.0']);
});

test('rich dependencies follow the variant metadata capabilities', (t) => {
  const result = resolveClosure({
    variant: 'aws-dev', roots: ['bottlerocket-app'], metadataProvides: caps('aws-dev'),
    available: [pkgs.base, pkgs.app, pkgs.awsbits].map((pkg) => pkg as RpmPackage),
  });
  t.true(result.ok);
  if (result.ok) t.deepEqual(result.packages.map((pkg) => pkg.name), ['bottlerocket-app', 'bottlerocket-awsbits', 'bottlerocket-base']);
});

test('an unmet requirement names the requiring package and the requirement', (t) => {
  const result = resolveClosure({
    variant: 'metal-dev', roots: ['bottlerocket-needy'], metadataProvides: caps('metal-dev'), available: [pkgs.needy as RpmPackage],
  });
  t.false(result.ok);
  if (result.ok) return;
  t.deepEqual(result.unmet, [{ requiredBy: 'bottlerocket-needy-1.0-1.noarch', requirement: 'bottlerocket-libmissing >= 2' }]);
  const error = unmetError('metal-dev', result.unmet);
  t.is(error.code, 'MISSING_DEPENDENCY');
  t.regex(error.message, /bottlerocket-needy-1\.0-1\.noarch requires "bottlerocket-libmissing >= 2", which no package provides/);
});

test('a version the requirement excludes does not satisfy it', (t) => {
  const result = resolveClosure({
    variant: 'metal-dev', roots: ['bottlerocket-app'], metadataProvides: caps('metal-dev'), available: [pkgs.baseOld, pkgs.app].map((pkg) => pkg as RpmPackage),
  });
  t.false(result.ok);
  if (!result.ok) t.is(result.unmet[0]?.requirement, 'bottlerocket-base >= 1.0');
});

test('a package conflicting with an enabled image feature is a conflicting-features error', (t) => {
  const error = t.throws(() => resolveClosure({
    variant: 'metal-dev', roots: ['bottlerocket-nofips'], metadataProvides: caps('metal-dev', { fips: true }), available: [pkgs.nofips as RpmPackage],
  }), { instanceOf: BrlError });
  t.is(error?.code, 'CONFLICTING_FEATURES');
  t.is(error?.exitCode, ExitCode.conflict);
  t.regex(error?.message ?? '', /bottlerocket-nofips-1\.0-1\.noarch conflicts with image feature "fips" being enabled in variant metal-dev/);
  t.true(resolveClosure({
    variant: 'metal-dev', roots: ['bottlerocket-nofips'], metadataProvides: caps('metal-dev'), available: [pkgs.nofips as RpmPackage],
  }).ok);
});

test('an "or" requirement takes the first alternative that can be installed', (t) => {
  const result = resolveClosure({
    variant: 'metal-dev', roots: ['fips-provider'], metadataProvides: caps('metal-dev'), available: [pkgs.fipsOnly, pkgs.base].map((pkg) => pkg as RpmPackage),
  });
  t.true(result.ok);
  if (result.ok) t.deepEqual(result.packages.map((pkg) => pkg.name), ['bottlerocket-base', 'bottlerocket-fipsbin']);
});

test('a corrupt RPM is an error naming the file', async (t) => {
  const corrupt = join(topDir, 'corrupt.rpm');
  const bytes = readFileSync(pkgs.base?.path as string);
  bytes.fill(0xff, bytes.length - 64, bytes.length - 32);
  writeFileSync(corrupt, bytes);
  const error = await t.throwsAsync(queryRpm(corrupt), { instanceOf: BrlError });
  t.is(error?.code, 'CORRUPT_RPM');
  t.true(error?.message.includes(corrupt));
  const truncated = join(topDir, 'truncated.rpm');
  writeFileSync(truncated, bytes.subarray(0, 200));
  await t.throwsAsync(queryRpm(truncated), { code: 'CORRUPT_RPM' } as never);
});

test('rpm version comparison follows rpmvercmp, including tilde and caret', (t) => {
  const ordered: Array<[string, string]> = [
    ['1.0', '1.0.1'], ['1.9', '1.10'], ['1.0~rc1', '1.0'], ['1.0', '1.0^git1'], ['1.0^git1', '1.0.1'], ['a', '1'], ['1.0a', '1.0.1'], ['2.0.0', '10'],
  ];
  for (const [low, high] of ordered) {
    t.true(rpmVersionCompare(low, high) < 0, `${low} < ${high}`);
    t.true(rpmVersionCompare(high, low) > 0, `${high} > ${low}`);
  }
  t.is(rpmVersionCompare('1.01', '1.1'), 0);
  t.true(compareEvr(parseEvr('1:1.0-1'), parseEvr('2.0-1')) > 0);
  t.is(compareEvr(parseEvr('1.0'), parseEvr('1.0-5')), 0);
});
