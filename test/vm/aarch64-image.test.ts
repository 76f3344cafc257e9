// The dev variant cross-built for aarch64 (in the VM suite: its GRUB is a 15-20 min cold build), checked with the real tools: sgdisk, veritysetup, fsck,
// mtools and the cross objdump; a second build from the same inputs gives the same bytes.
import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devBuilder, osDiskOf } from '../helpers/dev-image.ts';
import type { VariantBuildResult } from '../../src/lib/variant/build.ts';
import { debugfsCat, lz4Decompress, partitionFile, regionIsZero, sh, type BuildManifest } from '../e2e/variant-checks.ts';

const buildDev = devBuilder('e2e-aarch64', 'aarch64');
const work = mkdtempSync(join(tmpdir(), 'brl-variant-aarch64-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

let first: VariantBuildResult;
let manifest: BuildManifest;
const disk = join(work, 'os.img');
const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

test.before(async () => {
  first = await buildDev();
  manifest = JSON.parse(readFileSync(join(first.outputDir, 'build-manifest.json'), 'utf8')) as BuildManifest;
  lz4Decompress(osDiskOf(first), disk);
});

test('the aarch64 OS disk has the x86_64 A/B layout, passes sgdisk -v, boots BOOTAA64.EFI from EFI-A and leaves BIOS-BOOT and the MBR code empty', (t) => {
  t.regex(osDiskOf(first), /bottlerocket-dev-aarch64-0\.\d+\.\d+-e2e-aarch64\.img\.lz4$/);
  t.regex(sh('sgdisk', ['-v', disk]), /No problems found/);
  t.deepEqual(manifest.disks.os.partitions.map((p) => p.name).slice(0, 4), ['BIOS-BOOT', 'EFI-SYSTEM', 'BOTTLEROCKET-BOOT-A', 'BOTTLEROCKET-ROOT-A']);
  t.regex(sh('sgdisk', ['-i', '3', disk]), /Attribute flags: 0101000000000000/);
  const bios = manifest.disks.os.partitions.find((p) => p.key === 'BIOS');
  t.true(bios !== undefined && regionIsZero(disk, bios.startMiB * 1024 * 1024, bios.sizeMiB * 1024 * 1024), 'BIOS-BOOT is empty, as upstream\'s aarch64 images');
  t.true(regionIsZero(disk, 0, 440), 'no BIOS boot code in the protective MBR');

  const efi = partitionFile(disk, manifest, 'EFI-A', work);
  t.notThrows(() => sh('fsck.fat', ['-n', efi]));
  t.is(sh('mdir', ['-b', '-i', efi, '::/EFI/BOOT']).trim(), '::/EFI/BOOT/BOOTAA64.EFI');
  const grubImage = join(work, 'BOOTAA64.EFI');
  sh('mcopy', ['-i', efi, '::/EFI/BOOT/BOOTAA64.EFI', grubImage]);
  t.regex(sh('aarch64-linux-gnu-objdump', ['-f', grubImage]), /file format pei-aarch64-little\narchitecture: aarch64,/);
  t.true(readFileSync(grubImage).includes('gptprio.next'), 'GRUB carries the gptprio commands');
});

test('veritysetup verifies the aarch64 ROOT-A with grub.cfg\'s root hash; BOOT-A holds the arm64 kernel and no GRUB kit', (t) => {
  const boot = partitionFile(disk, manifest, 'BOOT-A', work);
  t.notThrows(() => sh('fsck.ext4', ['-fn', boot]));
  const grub = debugfsCat(boot, '/grub/grub.cfg');
  const [, blocks, rootHash] = /4096 4096 (\d+) 1 sha256 ([0-9a-f]{64}) [0-9a-f]{64} 2 restart_on_corruption ignore_zero_blocks/.exec(grub) ?? [];
  t.is(rootHash, manifest.verity.rootHash);
  const root = partitionFile(disk, manifest, 'ROOT-A', work, Number(blocks) * 4096);
  const hash = partitionFile(disk, manifest, 'HASH-A', work);
  t.notThrows(() => sh('veritysetup', ['verify', root, hash, rootHash as string]));
  t.notThrows(() => sh('fsck.ext4', ['-fn', root]));
  const vmlinuz = join(work, 'vmlinuz');
  sh('debugfs', ['-R', `dump /vmlinuz ${vmlinuz}`, boot]);
  t.is(readFileSync(vmlinuz).subarray(0x38, 0x3c).toString('latin1'), 'ARM\x64', 'the arm64 Image header');
  t.false(sh('debugfs', ['-R', 'ls -p /', boot]).includes('/grub/arm64-efi-kit'));
  t.regex(sh('debugfs', ['-R', 'ls -p /grub', boot]), /grub\.cfg/);
  t.notRegex(sh('debugfs', ['-R', 'ls -p /grub', boot]), /kit|arm64-efi/);
});

test('a second aarch64 build from the same inputs is byte-identical', async (t) => {
  const before = new Map(first.artifacts.map((artifact) => [artifact.file, sha256(join(first.outputDir, artifact.file))]));
  const second = await buildDev();
  t.deepEqual(second.artifacts.map((artifact) => artifact.file), [...before.keys()]);
  for (const artifact of second.artifacts) t.is(sha256(join(second.outputDir, artifact.file)), before.get(artifact.file) ?? 'missing', artifact.file);
});
