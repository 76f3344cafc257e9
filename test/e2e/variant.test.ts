import test from 'ava';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brl } from '../helpers/cli.ts';
import { buildEnv, makeProject, minimalVariant } from '../lib/variant/project-fixture.ts';
import { debugfsCat, lz4Decompress, partitionFile, regionIsZero, sh, type BuildManifest } from './variant-checks.ts';
import { cycloneDxSchemaErrors, spdxSchemaErrors } from '../helpers/sbom-schemas.ts';

const project = makeProject();
project.addVariant('test-minimal', minimalVariant());
const prefix = 'bottlerocket-test-minimal-x86_64-1.2.3-abcdef12';

interface CliResult { outputDir: string; verity: { rootHash: string; dataBlocks: number }; artifacts: Array<{ file: string; sha256: string }> }
let first: CliResult;
let firstBytes: Map<string, string>;
let manifest: BuildManifest;
const work = mkdtempSync(join(tmpdir(), 'brl-variant-check-'));
const disk = join(work, 'os.img');
const cleanup: string[] = [work, project.dir];

test.before(async () => {
  const run = await brl(['build', 'variant', 'test-minimal', '--json'], { cwd: project.dir, env: buildEnv() });
  if (run.exitCode !== 0) throw new Error(`build failed (${run.exitCode}): ${run.stdout}${run.stderr}`);
  first = JSON.parse(run.stdout) as CliResult;
  firstBytes = new Map(first.artifacts.map((artifact) => [artifact.file, sh('sha256sum', [join(first.outputDir, artifact.file)]).split(' ')[0] as string]));
  manifest = JSON.parse(readFileSync(join(first.outputDir, 'build-manifest.json'), 'utf8')) as BuildManifest;
  lz4Decompress(join(first.outputDir, `${prefix}.img.lz4`), disk);
});

test.after.always(() => {
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

test('writes every artifact under build/images/<arch>-<variant>/<version>-<build>/ with a latest link', (t) => {
  t.is(first.outputDir, join(project.dir, 'build', 'images', 'x86_64-test-minimal', '1.2.3-abcdef12'));
  t.is(readlinkSync(join(project.dir, 'build', 'images', 'x86_64-test-minimal', 'latest')), '1.2.3-abcdef12');
  const files = first.artifacts.map((artifact) => artifact.file).sort();
  t.deepEqual(files, [
    'application-inventory.json',
    `${prefix}-boot.ext4.lz4`, `${prefix}-data.img.lz4`, `${prefix}-root.ext4.lz4`, `${prefix}-root.verity.lz4`,
    `${prefix}.cdx.json`, `${prefix}.img.lz4`, `${prefix}.spdx.json`,
  ].sort());
  for (const link of ['bottlerocket-test-minimal-x86_64.img.lz4', 'bottlerocket-test-minimal-x86_64-1.2.3.img.lz4', 'bottlerocket-test-minimal-x86_64-v1.2.3-root.ext4.lz4']) {
    t.true(existsSync(join(first.outputDir, link)), link);
  }
  // The manifest's checksums are the files' checksums.
  for (const artifact of manifest.artifacts) t.is<string | undefined, string | undefined>(artifact.sha256, firstBytes.get(artifact.file), artifact.file);
  t.deepEqual(manifest.publishSizesGiB, { os: 1, data: 21, total: 22 });
  t.is(manifest.verity.rootHash, first.verity.rootHash);
  t.deepEqual(manifest.disks.os.partitions.map((p) => [p.number, p.name]).slice(0, 4), [[1, 'BIOS-BOOT'], [2, 'EFI-SYSTEM'], [3, 'BOTTLEROCKET-BOOT-A'], [4, 'BOTTLEROCKET-ROOT-A']]);
  t.is(manifest.disks.os.partitions.find((p) => p.key === 'BOOT-A')?.attributes, '0x0101000000000000');
  t.deepEqual(readdirSync(join(project.dir, 'build', 'images', 'x86_64-test-minimal')).sort(), ['1.2.3-abcdef12', 'latest'], 'no temp dirs left');
});

test('every .lz4 is a valid LZ4 frame and the OS disk passes sgdisk -v with gptprio set on BOOT-A', (t) => {
  for (const artifact of first.artifacts.filter((a) => a.file.endsWith('.lz4'))) t.notThrows(() => sh('lz4', ['-t', join(first.outputDir, artifact.file)]), artifact.file);
  t.is(statSync(disk).size, 1024 * 1024 * 1024);
  t.regex(sh('sgdisk', ['-v', disk]), /No problems found/);
  const boot = sh('sgdisk', ['-i', '3', disk]);
  t.regex(boot, /Partition name: 'BOTTLEROCKET-BOOT-A'/);
  t.regex(boot, /Attribute flags: 0101000000000000/);
  t.regex(sh('sgdisk', ['-i', '13', disk]), /Partition unique GUID: 69040874-417D-4E26-A764-7885F22007EA/);
  // Bank B and the EFI partitions stay zero until the first update writes them.
  for (const key of ['EFI-B', 'BOOT-B', 'ROOT-B', 'HASH-B', 'RESERVED-B', 'EFI-A']) {
    const partition = manifest.disks.os.partitions.find((candidate) => candidate.key === key);
    t.true(partition !== undefined && regionIsZero(disk, partition.startMiB * 1024 * 1024, partition.sizeMiB * 1024 * 1024), `${key} is empty`);
  }
  const dataDisk = join(work, 'data.img');
  lz4Decompress(join(first.outputDir, `${prefix}-data.img.lz4`), dataDisk);
  t.regex(sh('sgdisk', ['-v', dataDisk]), /No problems found/);
  t.regex(sh('sgdisk', ['-i', '1', dataDisk]), /Partition unique GUID: 5B94E8DF-28B8-485C-9D19-362263B5944C[\s\S]*Partition size: 2093056 sectors/);
});

test('veritysetup verifies ROOT-A against HASH-A with the root hash from grub.cfg; fsck accepts ROOT-A and BOOT-A', (t) => {
  const boot = partitionFile(disk, manifest, 'BOOT-A', work);
  const grub = debugfsCat(boot, '/grub/grub.cfg');
  const table = /set dm_verity_root="([^"]+)"/.exec(grub)?.[1] ?? '';
  const [, blocks, rootHash, salt] = /4096 4096 (\d+) 1 sha256 ([0-9a-f]{64}) ([0-9a-f]{64}) 2 restart_on_corruption ignore_zero_blocks$/.exec(table) ?? [];
  t.is(rootHash, first.verity.rootHash);
  t.is(Number(blocks), first.verity.dataBlocks);
  t.regex(table, new RegExp(`^root,,,ro,0 ${Number(blocks) * 8} verity 1 PARTUUID=\\$boot_uuid/PARTNROFF=1 PARTUUID=\\$boot_uuid/PARTNROFF=2 `));
  const root = partitionFile(disk, manifest, 'ROOT-A', work, Number(blocks) * 4096);
  const hash = partitionFile(disk, manifest, 'HASH-A', work);
  t.notThrows(() => sh('veritysetup', ['verify', root, hash, rootHash as string]));
  t.regex(sh('veritysetup', ['dump', hash]), new RegExp(`Salt:\\s+${salt}`));
  t.notThrows(() => sh('fsck.ext4', ['-fn', root]));
  t.notThrows(() => sh('fsck.ext4', ['-fn', boot]));
  t.regex(grub, /linux \(\$root\)\/vmlinuz console=ttyS0 bootconfig root=\/dev\/dm-0 /);
  // The update images are the same filesystems the disk carries.
  const rootUpdate = join(work, 'root-update.img');
  lz4Decompress(join(first.outputDir, `${prefix}-root.ext4.lz4`), rootUpdate);
  t.is(sh('sha256sum', ['-b', rootUpdate]).split(' ')[0], sh('sha256sum', ['-b', root]).split(' ')[0]);
});

test('the root carries os-release fields, the inventory, labels; PRIVATE carries bootconfig', (t) => {
  const root = join(work, 'root-update-labels.img');
  lz4Decompress(join(first.outputDir, `${prefix}-root.ext4.lz4`), root);
  const osRelease = debugfsCat(root, '/usr/lib/os-release');
  for (const line of ['VERSION="1.2.3 (test-minimal)"', 'PRETTY_NAME="Bottlerocket OS 1.2.3 (test-minimal)"', 'VARIANT_ID=test-minimal', 'VERSION_ID=1.2.3', 'BUILD_ID=abcdef12']) {
    t.true(osRelease.includes(`${line}\n`), line);
  }
  const inventory = JSON.parse(debugfsCat(root, '/usr/share/bottlerocket/application-inventory.json')) as { Content: Array<{ Name: string; InstalledTime: string }> };
  t.deepEqual(inventory.Content.map((entry) => entry.Name), ['minimal-kernel', 'minimal-policy', 'release']);
  t.is(inventory.Content[0]?.InstalledTime, '2023-11-14T22:13:20Z');
  t.regex(sh('debugfs', ['-R', 'ea_get /usr/lib/os-release security.selinux', root]), /system_u:object_r:os_release_t:s0/);
  t.regex(sh('debugfs', ['-R', 'ea_get /usr/share/bottlerocket security.selinux', root]), /system_u:object_r:os_t:s0/);
  t.false(sh('debugfs', ['-R', 'ls /boot', root]).includes('vmlinuz'), '/boot in the root is an empty mount point');
  const privateFs = partitionFile(disk, manifest, 'PRIVATE', work);
  const bootconfig = sh('debugfs', ['-R', 'cat /bootconfig.data', privateFs]);
  t.true(bootconfig.startsWith('init.systemd.log_level = info\nkernel.console = ttyS0\n\0'));
  t.true(bootconfig.endsWith('#BOOTCONFIG\n'));
  const spdx = JSON.parse(readFileSync(join(first.outputDir, `${prefix}.spdx.json`), 'utf8')) as { packages: Array<{ name: string; licenseDeclared: string }> };
  t.deepEqual(spdx.packages.slice(1).map((p) => [p.name, p.licenseDeclared]), [
    ['bottlerocket-minimal-kernel', 'Apache-2.0'], ['bottlerocket-minimal-policy', 'Apache-2.0'], ['bottlerocket-release', 'Apache-2.0'],
  ]);
  t.deepEqual(spdxSchemaErrors(spdx), [], 'the SPDX 2.3 schema');
  t.deepEqual(cycloneDxSchemaErrors(JSON.parse(readFileSync(join(first.outputDir, `${prefix}.cdx.json`), 'utf8'))), [], 'the CycloneDX 1.5 schema');
});

test('a second build from the same inputs is byte-identical', async (t) => {
  const again = makeProject();
  cleanup.push(again.dir);
  again.addVariant('test-minimal', minimalVariant());
  const run = await brl(['build', 'variant', 'test-minimal', '--json'], { cwd: again.dir, env: buildEnv() });
  t.is(run.exitCode, 0, run.stderr);
  const second = JSON.parse(run.stdout) as CliResult;
  t.deepEqual(second.artifacts.map((a) => [a.file, a.sha256]), first.artifacts.map((a) => [a.file, a.sha256]));
  for (const artifact of second.artifacts) {
    t.is(sh('sha256sum', [join(second.outputDir, artifact.file)]).split(' ')[0], firstBytes.get(artifact.file), artifact.file);
  }
  t.is(readFileSync(join(second.outputDir, 'build-manifest.json'), 'utf8'), readFileSync(join(first.outputDir, 'build-manifest.json'), 'utf8'));
});
