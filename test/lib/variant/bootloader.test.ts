// The boot loader's places on the OS disk, with a stand-in grub package (the real one is slow to build; test/e2e/grub-boot.test.ts boots it).
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embeddedCoreImage, mbrBootCode } from '../../../src/lib/image/bios-boot.ts';
import { fatVolumeId } from '../../../src/lib/image/ids.ts';
import { buildVariant, type VariantBuildResult } from '../../../src/lib/variant/build.ts';
import { cutPartition, lz4Decompress, sh } from '../../e2e/variant-checks.ts';
import { buildEnv, makeProject, minimalVariant, testEpoch } from './project-fixture.ts';

const project = makeProject();
const scratch = mkdtempSync(join(tmpdir(), 'brl-bootloader-'));
test.after.always(() => {
  rmSync(project.dir, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

const MiB = 1024 * 1024;
const efiBinary = randomBytes(700_000);
const bootImg = randomBytes(512);
const coreImg = randomBytes(512 * 40 + 77);
// grub-mkimage's default blocklist in diskboot: start 2, the sectors after the first, segment 0x820.
coreImg.fill(0, 476, 500);
coreImg.writeBigUInt64LE(2n, 500);
coreImg.writeUInt16LE(40, 508);
coreImg.writeUInt16LE(0x820, 510);

project.addPackage('grub', [
  'Name: %{_cross_os}grub', 'Version: 1.0', 'Release: 1%{?dist}', 'Summary: GRUB stand-in with the real package\'s file layout', 'License: Apache-2.0',
  'BuildArch: noarch', 'Source0: bootx64.efi', 'Source1: boot.img', 'Source2: core.img', '%description', 'Stand-in.', '%prep', '%build', '%install',
  'install -D -m 0644 %{SOURCE0} %{buildroot}%{_cross_bootdir}/efi/EFI/BOOT/bootx64.efi',
  'install -D -m 0644 %{SOURCE1} %{buildroot}%{_cross_bootdir}/grub/i386-pc/boot.img',
  'install -D -m 0644 %{SOURCE2} %{buildroot}%{_cross_bootdir}/grub/i386-pc/core.img',
  '%files', '%{_cross_bootdir}/efi/EFI/BOOT/bootx64.efi', '%{_cross_bootdir}/grub/i386-pc/boot.img', '%{_cross_bootdir}/grub/i386-pc/core.img', '',
].join('\n'));
writeFileSync(join(project.dir, 'packages-specs', 'grub', 'bootx64.efi'), efiBinary);
writeFileSync(join(project.dir, 'packages-specs', 'grub', 'boot.img'), bootImg);
writeFileSync(join(project.dir, 'packages-specs', 'grub', 'core.img'), coreImg);
const withGrub = minimalVariant().replace('"minimal-policy"]', '"minimal-policy", "grub"]');
project.addVariant('test-grub', withGrub);
project.addVariant('test-nogrub', minimalVariant());

function osDisk(result: VariantBuildResult, name: string): string {
  const disk = join(scratch, `${name}.img`);
  lz4Decompress(join(result.outputDir, `bottlerocket-${result.variant}-x86_64-1.2.3-abcdef12.img.lz4`), disk);
  return disk;
}

function slice(disk: string, offset: number, length: number): Buffer {
  return readFileSync(disk).subarray(offset, offset + length);
}

test.serial('with grub, EFI-SYSTEM is a clean FAT with BOOTX64.EFI, the MBR boots core.img in BIOS-BOOT, and BOOT holds neither', async (t) => {
  const result = await buildVariant(project.dir, 'test-grub', { progress: 'silent', env: buildEnv() });
  const disk = osDisk(result, 'grub');
  t.regex(sh('sgdisk', ['-v', disk]), /No problems found/);

  // EFI-A: 1 GiB layout puts it at 5 MiB, 5 MiB long.
  const efi = join(scratch, 'efi.fat');
  cutPartition(disk, 5 * MiB, 5 * MiB, efi);
  t.regex(sh('fsck.fat', ['-n', efi]), /3 files/);
  const listing = sh('mdir', ['-i', efi, '::/EFI/BOOT']);
  const volumeId = fatVolumeId({ sourceDateEpoch: testEpoch, variant: 'test-grub', arch: 'x86_64' });
  t.regex(listing, new RegExp(`Volume Serial Number is ${volumeId.slice(0, 4).toUpperCase()}-${volumeId.slice(4).toUpperCase()}`));
  t.regex(listing, /BOOTX64\s+EFI\s+700000 2023-11-14\s+22:13/);
  sh('mcopy', ['-i', efi, '::/EFI/BOOT/BOOTX64.EFI', join(scratch, 'back.efi')]);
  t.true(readFileSync(join(scratch, 'back.efi')).equals(efiBinary));

  // Sector 0: boot.img's code aimed at BIOS-BOOT's first LBA (2048), the protective table kept.
  const mbr = slice(disk, 0, 512);
  t.deepEqual(mbr.subarray(0, 440), mbrBootCode(bootImg, 2048n));
  t.is(mbr[446 + 4], 0xee);
  t.is(mbr.readUInt16LE(510), 0xaa55);
  // BIOS-BOOT: core.img with its blocklist for LBA 2049 on.
  const core = embeddedCoreImage(coreImg, 2048n, 4 * 2048);
  t.deepEqual(slice(disk, MiB, core.length), core);
  t.is(core.readBigUInt64LE(500), 2049n);

  // BOOT-A (ext4 at 10 MiB) has the kernel and grub.cfg but no boot loader files.
  const boot = join(scratch, 'boot.ext4');
  lz4Decompress(join(result.outputDir, 'bottlerocket-test-grub-x86_64-1.2.3-abcdef12-boot.ext4.lz4'), boot);
  const names = (dir: string): string[] =>
    sh('debugfs', ['-R', `ls -p ${dir}`, boot]).split('\n').filter(Boolean).map((line) => line.split('/')[5]!).filter((name) => name !== '.' && name !== '..').sort();
  t.deepEqual(names('/'), ['.vmlinuz.hmac', 'grub', 'lost+found', 'vmlinuz']);
  t.deepEqual(names('/grub'), ['grub.cfg']);

  // Built again: the same bytes.
  const again = await buildVariant(project.dir, 'test-grub', { progress: 'silent', env: buildEnv() });
  t.true(readFileSync(osDisk(again, 'grub-again')).equals(readFileSync(disk)));
});

test.serial('without grub in the variant, EFI-SYSTEM, BIOS-BOOT and the MBR boot code stay zero', async (t) => {
  const result = await buildVariant(project.dir, 'test-nogrub', { progress: 'silent', env: buildEnv() });
  const disk = osDisk(result, 'nogrub');
  t.true(slice(disk, 0, 440).every((byte) => byte === 0));
  t.true(slice(disk, MiB, 9 * MiB).every((byte) => byte === 0));
  t.regex(sh('sgdisk', ['-v', disk]), /No problems found/);
});
