import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildVariant, type VariantBuildResult } from '../../src/lib/variant/build.ts';
import { buildEnv, makeProject, minimalVariant } from '../lib/variant/project-fixture.ts';
import { cutPartition, lz4Decompress, sh, type BuildManifest } from './variant-checks.ts';

const project = makeProject();
const scratch = mkdtempSync(join(tmpdir(), 'brl-variant-formats-'));
test.after.always(() => {
  rmSync(project.dir, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

const manifestOf = (result: VariantBuildResult): BuildManifest =>
  JSON.parse(readFileSync(join(result.outputDir, 'build-manifest.json'), 'utf8')) as BuildManifest;

test('qcow2 with the unified plan: one disk, DATA-A after PRIVATE with the preferred GUID, qemu-img check clean', async (t) => {
  project.addVariant('test-unified', minimalVariant('image-format = "qcow2"').replace('[image-layout]', '[image-layout]\npartition-plan = "unified"'));
  const result = await buildVariant(project.dir, 'test-unified', { progress: 'silent', env: buildEnv() });
  const disks = result.artifacts.filter((artifact) => artifact.kind.endsWith('disk'));
  t.deepEqual(disks.map((artifact) => artifact.file), ['bottlerocket-test-unified-x86_64-1.2.3-abcdef12.qcow2']);
  const qcow2 = join(result.outputDir, disks[0]?.file as string);
  t.notThrows(() => sh('qemu-img', ['check', qcow2]));
  const info = JSON.parse(sh('qemu-img', ['info', '--output=json', qcow2])) as { format: string; 'virtual-size': number };
  t.is(info.format, 'qcow2');
  t.is(info['virtual-size'], 2 * 1024 * 1024 * 1024);
  const raw = join(scratch, 'unified.img');
  sh('qemu-img', ['convert', '-O', 'raw', qcow2, raw]);
  t.regex(sh('sgdisk', ['-v', raw]), /No problems found/);
  const data = manifestOf(result).disks.os.partitions.find((partition) => partition.key === 'DATA-A');
  t.like(data, { number: 13, startMiB: 1022, sizeMiB: 1024, uniqueGuid: '5b94e8df-28b8-485c-9d19-362263b5944c' });
  const dataFs = join(scratch, 'unified-data.img');
  cutPartition(raw, 1022 * 1024 * 1024, 1024 * 1024 * 1024, dataFs);
  t.notThrows(() => sh('fsck.ext4', ['-fn', dataFs]));
});

test('a single-bank erofs image: no B partitions, an erofs root that veritysetup verifies', async (t) => {
  project.addVariant('test-erofs', minimalVariant('[image-features]\nerofs-root-partition = true\nin-place-updates = false\nxfs-data-partition = true'));
  const result = await buildVariant(project.dir, 'test-erofs', { progress: 'silent', env: buildEnv() });
  t.is(result.rootFilesystem, 'erofs');
  const manifest = manifestOf(result);
  t.deepEqual(manifest.disks.os.partitions.map((partition) => partition.key), ['BIOS', 'EFI-A', 'BOOT-A', 'ROOT-A', 'HASH-A', 'RESERVED-A', 'PRIVATE', 'DATA-A']);
  t.like(manifest.disks.os.partitions.find((partition) => partition.key === 'ROOT-A'), { startMiB: 55, sizeMiB: 920 });
  const root = join(scratch, 'erofs-root.img');
  const verity = join(scratch, 'erofs-root.verity');
  lz4Decompress(join(result.outputDir, `bottlerocket-test-erofs-x86_64-1.2.3-abcdef12-root.ext4.lz4`), root);
  lz4Decompress(join(result.outputDir, `bottlerocket-test-erofs-x86_64-1.2.3-abcdef12-root.verity.lz4`), verity);
  t.is(readFileSync(root).readUInt32LE(1024), 0xe0f5e1e2, 'erofs superblock magic');
  t.notThrows(() => sh('veritysetup', ['verify', root, verity, result.verity.rootHash]));
  // xfs-data-partition: the data disk's partition stays empty for first boot to format.
  const dataDisk = join(scratch, 'erofs-data.img');
  lz4Decompress(join(result.outputDir, `bottlerocket-test-erofs-x86_64-1.2.3-abcdef12-data.img.lz4`), dataDisk);
  const dataPart = join(scratch, 'erofs-data-part.img');
  cutPartition(dataDisk, 1024 * 1024, 4 * 1024 * 1024, dataPart);
  t.true(readFileSync(dataPart).every((byte) => byte === 0));
});

test('a streamOptimized vmdk is reproducible and accepted by qemu-img', async (t) => {
  project.addVariant('test-vmdk', minimalVariant('image-format = "vmdk"'));
  writeFileSync(join(project.dir, 'variants', 'test-vmdk', 'template.ovf'),
    '<Envelope><File ovf:href="{{OS_DISK}}"/><File ovf:href="{{DATA_DISK}}"/><Disk capacity="{{OS_DISK_BYTES}}"/><Disk capacity="{{DATA_DISK_BYTES}}"/></Envelope>\n');
  const first = await buildVariant(project.dir, 'test-vmdk', { progress: 'silent', env: buildEnv() });
  const prefix = 'bottlerocket-test-vmdk-x86_64-1.2.3-abcdef12';
  const vmdk = first.artifacts.find((artifact) => artifact.kind === 'os-disk');
  t.is(vmdk?.file, `${prefix}.vmdk`);
  const path = join(first.outputDir, vmdk?.file as string);
  t.regex(readFileSync(path).subarray(0, 4096).toString('latin1'), /createType="streamOptimized"/);
  t.notThrows(() => sh('qemu-img', ['check', path]));
  // The OVA: OVF, manifest, OS vmdk, data vmdk, in that order; the manifest's hashes match.
  const ova = join(first.outputDir, `${prefix}.ova`);
  t.deepEqual(sh('tar', ['-tf', ova]).trim().split('\n'), [`${prefix}.ovf`, `${prefix}.mf`, `${prefix}.vmdk`, `${prefix}-data.vmdk`]);
  t.is(sh('tar', ['-xOf', ova, `${prefix}.ovf`]),
    `<Envelope><File ovf:href="${prefix}.vmdk"/><File ovf:href="${prefix}-data.vmdk"/><Disk capacity="${1024 ** 3}"/><Disk capacity="${21 * 1024 ** 3}"/></Envelope>\n`);
  const manifestLines = sh('tar', ['-xOf', ova, `${prefix}.mf`]).trim().split('\n');
  t.is(manifestLines[1], `SHA256(${prefix}.vmdk)= ${vmdk?.sha256}`);
  const second = await buildVariant(project.dir, 'test-vmdk', { progress: 'silent', env: buildEnv() });
  t.deepEqual(second.artifacts.map((artifact) => artifact.sha256), first.artifacts.map((artifact) => artifact.sha256));
});

test('an aarch64 build is named for its arch and derives different identifiers', async (t) => {
  project.addVariant('test-arches', minimalVariant().replace('supported-arches = ["x86_64"]', 'supported-arches = ["x86_64", "aarch64"]'));
  const arm = await buildVariant(project.dir, 'test-arches', { arch: 'aarch64', progress: 'silent', env: buildEnv() });
  t.is(arm.outputDir, join(project.dir, 'build', 'images', 'aarch64-test-arches', '1.2.3-abcdef12'));
  t.true(arm.artifacts.some((artifact) => artifact.file === 'bottlerocket-test-arches-aarch64-1.2.3-abcdef12.img.lz4'));
  const x86 = await buildVariant(project.dir, 'test-arches', { arch: 'x86_64', progress: 'silent', env: buildEnv() });
  t.not(manifestOf(arm).disks.os.diskGuid, manifestOf(x86).disks.os.diskGuid);
  t.not(arm.verity.salt, x86.verity.salt);
});

test('PUBLISH_REPO_ROOT_JSON and BUILDSYS_CACERTS_BUNDLE_OVERRIDE land in the root filesystem', async (t) => {
  project.addVariant('test-trust', minimalVariant());
  const rootJson = join(scratch, 'root.json');
  writeFileSync(rootJson, '{"signed":{"_type":"root","version":1},"signatures":[]}\n');
  const key = join(scratch, 'ca.key');
  const cert = join(scratch, 'ca.pem');
  sh('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=brl test CA', '-days', '1']);
  const result = await buildVariant(project.dir, 'test-trust', {
    progress: 'silent', env: { ...buildEnv(), PUBLISH_REPO_ROOT_JSON: rootJson, BUILDSYS_CACERTS_BUNDLE_OVERRIDE: cert },
  });
  const root = join(scratch, 'trust-root.img');
  lz4Decompress(join(result.outputDir, 'bottlerocket-test-trust-x86_64-1.2.3-abcdef12-root.ext4.lz4'), root);
  t.is(sh('debugfs', ['-R', 'cat /usr/share/updog/root.json', root]), readFileSync(rootJson, 'utf8'));
  t.is(sh('debugfs', ['-R', 'cat /usr/share/factory/etc/pki/tls/certs/ca-bundle.crt', root]), readFileSync(cert, 'utf8'));
  writeFileSync(rootJson, '{not json');
  await t.throwsAsync(buildVariant(project.dir, 'test-trust', { progress: 'silent', env: { ...buildEnv(), PUBLISH_REPO_ROOT_JSON: rootJson } }), { message: /TUF root .*root\.json is not JSON/ });
});
