import test from 'ava';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../../../src/lib/core/errors.ts';
import { kernelParametersFor, loadVariant, parseVariantManifest } from '../../../src/lib/variant/definition.ts';
import { repoDir } from '../../helpers/cli.ts';
import { parseToml } from '../../../src/lib/core/toml.ts';
import { parseVariantName } from '../../../src/lib/variant/name.ts';
import { loadRelease, withVersionOverride } from '../../../src/lib/variant/release.ts';

const parse = (name: string, text: string, warnings: string[] = []) =>
  parseVariantManifest(parseToml(`variants/${name}/variant.toml`, text), name, `variants/${name}`, warnings);

test('applies Bottlerocket defaults when the manifest names only packages', (t) => {
  const variant = parse('aws-k8s-1.31', 'included-packages = ["release"]\n');
  t.deepEqual(variant.layout, { osImageSizeGiB: 2, dataImageSizeGiB: 1, publishImageSizeHintGiB: 22, partitionPlan: 'split' });
  t.is(variant.imageFormat, 'raw');
  t.deepEqual(variant.supportedArches, ['x86_64', 'aarch64']);
  t.true(variant.features['in-place-updates']);
  t.true(variant.features['host-containers']);
  t.false(variant.features['erofs-root-partition']);
  t.false(variant.features['xfs-data-partition']);
  t.false(variant.features['uefi-secure-boot']);
});

test('reads every layout key and feature', (t) => {
  const variant = parse('metal-k8s-1.31', [
    'included-packages = ["kernel", "release"]',
    'kernel-parameters = ["console=tty0", "quiet"]',
    'image-format = "qcow2"',
    'supported-arches = ["x86_64"]',
    '[image-layout]',
    'os-image-size-gib = 4',
    'data-image-size-gib = 20',
    'publish-image-size-hint-gib = 40',
    'partition-plan = "unified"',
    '[image-features]',
    'erofs-root-partition = true',
    'in-place-updates = false',
  ].join('\n'));
  t.deepEqual(variant.layout, { osImageSizeGiB: 4, dataImageSizeGiB: 20, publishImageSizeHintGiB: 40, partitionPlan: 'unified' });
  t.is(variant.imageFormat, 'qcow2');
  t.deepEqual(variant.kernelParameters, ['console=tty0', 'quiet']);
  t.true(variant.features['erofs-root-partition']);
  t.false(variant.features['in-place-updates']);
});

test('[kernel-parameters-by-arch] replaces kernel-parameters for its arch only; a key naming no supported arch is an error', (t) => {
  const variant = parse('metal-dev', [
    'kernel-parameters = ["console=tty0", "console=ttyS0,115200n8"]',
    '[kernel-parameters-by-arch]',
    'aarch64 = ["console=tty0", "console=ttyAMA0,115200n8"]',
  ].join('\n'));
  t.deepEqual(kernelParametersFor(variant, 'x86_64'), ['console=tty0', 'console=ttyS0,115200n8']);
  t.deepEqual(kernelParametersFor(variant, 'aarch64'), ['console=tty0', 'console=ttyAMA0,115200n8']);
  const typo = t.throws(() => parse('metal-dev', 'supported-arches = ["x86_64", "aarch64"]\n[kernel-parameters-by-arch]\narm64 = ["quiet"]\n'), { instanceOf: BrlError });
  t.regex(typo?.message ?? '', /variant\.toml:3: kernel-parameters-by-arch\.arm64: "arm64" is not one of the variant's supported-arches \(x86_64, aarch64\)/);
  const unsupported = t.throws(() => parse('metal-dev', 'supported-arches = ["x86_64"]\n[kernel-parameters-by-arch]\naarch64 = ["quiet"]\n'), { instanceOf: BrlError });
  t.regex(unsupported?.message ?? '', /kernel-parameters-by-arch\.aarch64: "aarch64" is not one of the variant's supported-arches \(x86_64\)/);
  t.throws(() => parse('metal-dev', '[kernel-parameters-by-arch]\naarch64 = ["a b"]\n'), { message: /kernel-parameters-by-arch\.aarch64: "a b" must be one non-empty word/ });
});

test('the dev variant names each arch\'s serial console last: ttyS0 on x86_64, the virt machine\'s PL011 on aarch64; both start SELinux', async (t) => {
  const dev = await loadVariant(repoDir, 'dev');
  t.deepEqual(kernelParametersFor(dev, 'x86_64'), ['console=tty0', 'console=ttyS0,115200n8', 'net.ifnames=0', 'security=selinux', 'no_timer_check']);
  t.deepEqual(kernelParametersFor(dev, 'aarch64'), ['console=tty0', 'console=ttyAMA0,115200n8', 'net.ifnames=0', 'security=selinux']);
});

test('an unknown top-level key is an error naming the key and its line', (t) => {
  const error = t.throws(() => parse('aws-dev', 'included-packages = []\nimage-size = 3\n'), { instanceOf: BrlError });
  t.regex(error?.message ?? '', /variant\.toml:2: image-size: unknown key/);
  t.is(error?.exitCode, ExitCode.badInput);
});

test('an unknown image feature names the feature', (t) => {
  const error = t.throws(() => parse('aws-dev', '[image-features]\nturbo-mode = true\n'), { instanceOf: BrlError });
  t.regex(error?.message ?? '', /image-features\.turbo-mode: unknown image feature/);
});

test('unified-cgroup-hierarchy is refused as removed', (t) => {
  const error = t.throws(() => parse('aws-dev', '[image-features]\nunified-cgroup-hierarchy = true\n'), { instanceOf: BrlError });
  t.regex(error?.message ?? '', /unified-cgroup-hierarchy: unified-cgroup-hierarchy was removed/);
});

test('experimental upstream features are rejected', (t) => {
  for (const feature of ['encrypted-storage', 'ephemeral-encryption-keys', 'standalone-image']) {
    const error = t.throws(() => parse('aws-dev', `[image-features]\n${feature} = true\n`), { instanceOf: BrlError });
    t.regex(error?.message ?? '', new RegExp(`image-features\\.${feature}: .*does not implement`));
  }
});

test('deprecated features are accepted with a warning', (t) => {
  const warnings: string[] = [];
  const variant = parse('aws-dev', '[image-features]\ngrub-set-private-var = true\nsystemd-networkd = true\n', warnings);
  t.true(variant.features['systemd-networkd']);
  t.is(warnings.length, 2);
  t.regex(warnings[0] ?? '', /grub-set-private-var is deprecated/);
});

test('layout sizes must be whole GiB and the plan split or unified', (t) => {
  t.throws(() => parse('aws-dev', '[image-layout]\nos-image-size-gib = 0\n'), { message: /os-image-size-gib: must be a whole number of GiB/ });
  t.throws(() => parse('aws-dev', '[image-layout]\nos-image-size-gib = 2.5\n'), { message: /os-image-size-gib/ });
  t.throws(() => parse('aws-dev', '[image-layout]\npartition-plan = "striped"\n'), { message: /partition-plan: "striped" is not a partition plan/ });
  t.throws(() => parse('aws-dev', '[image-layout]\npublish-image-size = 3\n'), { message: /publish-image-size: unknown key/ });
});

test('image-format and supported-arches accept only known values', (t) => {
  t.throws(() => parse('aws-dev', 'image-format = "uki"\n'), { message: /image-format: "uki" is not supported/ });
  t.throws(() => parse('aws-dev', 'supported-arches = ["riscv64"]\n'), { message: /supported-arches: unknown architecture "riscv64"/ });
});

test('variant names split into platform, runtime, version and flavor', (t) => {
  t.deepEqual(parseVariantName('aws-k8s-1.31'), { platform: 'aws', runtime: 'k8s', family: 'aws-k8s', version: '1.31', flavor: 'none' });
  t.deepEqual(parseVariantName('aws-k8s-1.31-nvidia'), { platform: 'aws', runtime: 'k8s', family: 'aws-k8s', version: '1.31', flavor: 'nvidia' });
  t.deepEqual(parseVariantName('aws-dev'), { platform: 'aws', runtime: 'dev', family: 'aws-dev', version: '0', flavor: 'none' });
  t.deepEqual(parseVariantName('metal-dev-fips'), { platform: 'metal', runtime: 'dev', family: 'metal-dev', version: '0', flavor: 'fips' });
});

test('a one-word variant name needs platform and runtime in the manifest', (t) => {
  t.throws(() => parseVariantName('dev'), { message: /does not match platform-runtime/ });
  t.throws(() => parseVariantName('Aws-Dev'), { message: /does not match/ });
  const variant = parse('dev', 'platform = "metal"\nruntime = "dev"\n');
  t.deepEqual(variant.parts, { platform: 'metal', runtime: 'dev', family: 'metal-dev', version: '0', flavor: 'none' });
});

test('reads upstream Cargo.toml manifests from [package.metadata.build-variant]', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-cargo-variant-'));
  mkdirSync(join(dir, 'variants', 'aws-k8s-1.31'), { recursive: true });
  writeFileSync(join(dir, 'variants', 'aws-k8s-1.31', 'Cargo.toml'), [
    '[package]', 'name = "aws-k8s-1_31"', 'version = "0.1.0"',
    '[package.metadata.build-variant]', 'included-packages = ["release", "kubelet-1.31"]',
    '[package.metadata.build-variant.image-features]', 'xfs-data-partition = true',
  ].join('\n'));
  const variant = await loadVariant(dir, 'aws-k8s-1.31');
  t.deepEqual(variant.includedPackages, ['release', 'kubelet-1.31']);
  t.true(variant.features['xfs-data-partition']);
  await t.throwsAsync(loadVariant(dir, '../aws-k8s-1.31'), { message: /is not a variant name/ });
  const missing = await t.throwsAsync(loadVariant(dir, 'nope-variant'), { instanceOf: BrlError });
  t.regex(missing?.hint ?? '', /known variants: aws-k8s-1\.31/);
});

test('Release.toml gives the version and the migrations between versions', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-release-'));
  writeFileSync(join(dir, 'Release.toml'), 'version = "1.26.0"\n[migrations]\n"(1.25.0, 1.26.0)" = ["migrate_v1.26.0_foo.lz4"]\n');
  t.deepEqual(await loadRelease(dir), {
    path: join(dir, 'Release.toml'),
    version: '1.26.0',
    migrations: [{ from: '1.25.0', to: '1.26.0', migrations: ['migrate_v1.26.0_foo.lz4'] }],
  });
  writeFileSync(join(dir, 'Release.toml'), 'version = "1.26"\n');
  await t.throwsAsync(loadRelease(dir), { message: /version: "1\.26" must be MAJOR\.MINOR\.PATCH/ });
});

test('BUILDSYS_VERSION_IMAGE overrides Release.toml\'s version for one build, and must be MAJOR.MINOR.PATCH', (t) => {
  const release = { path: 'Release.toml', version: '0.1.0', migrations: [] };
  t.is(withVersionOverride(release, {}).version, '0.1.0');
  t.is(withVersionOverride(release, { BUILDSYS_VERSION_IMAGE: '0.1.1' }).version, '0.1.1');
  t.throws(() => withVersionOverride(release, { BUILDSYS_VERSION_IMAGE: 'v1' }), { message: 'BUILDSYS_VERSION_IMAGE="v1" must be MAJOR.MINOR.PATCH' });
});
