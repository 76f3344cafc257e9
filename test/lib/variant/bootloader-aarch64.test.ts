// The boot loader's places for the aarch64 grub package's layout: BOOTAA64.EFI in EFI-SYSTEM, the
// arm64-efi kit out of BOOT, and no BIOS boot chain (aarch64 has none, as upstream's images).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_LAYOUT, planOsDisk } from '../../../src/lib/image/layout.ts';
import { placeBootloader, takeBootloaderFiles } from '../../../src/lib/variant/bootloader.ts';

test('aarch64 grub: EFI-SYSTEM holds EFI/BOOT/BOOTAA64.EFI, the arm64-efi kit leaves BOOT, and no BIOS boot chain is made', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-bootloader-aarch64-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bootTree = join(dir, 'boot');
  const efiTree = join(dir, 'efi');
  const efiImage = Buffer.from('MZ stand-in for GRUB\'s arm64-efi image');
  mkdirSync(join(efiTree, 'EFI', 'BOOT'), { recursive: true });
  writeFileSync(join(efiTree, 'EFI', 'BOOT', 'bootaa64.efi'), efiImage);
  mkdirSync(join(bootTree, 'grub', 'arm64-efi-kit', 'arm64-efi'), { recursive: true });
  writeFileSync(join(bootTree, 'grub', 'arm64-efi-kit', 'modules'), 'gptprio\n');
  writeFileSync(join(bootTree, 'vmlinuz'), 'kernel');

  const files = await takeBootloaderFiles(bootTree, efiTree, join(dir, 'hold'));
  t.deepEqual(files.efiFiles, ['EFI/BOOT/bootaa64.efi']);
  t.is(files.bios, undefined);
  t.is(files.efiKit, join(dir, 'hold', 'arm64-efi-kit'));
  t.true(existsSync(join(dir, 'hold', 'arm64-efi-kit', 'modules')));
  t.false(existsSync(join(bootTree, 'grub')), 'BOOT keeps no grub directory of the package');

  const ids = { sourceDateEpoch: 1700000000, variant: 'dev', arch: 'aarch64' };
  const placement = await placeBootloader(files, planOsDisk(DEFAULT_LAYOUT), ids, ids.sourceDateEpoch, dir);
  t.is(placement.biosBootImage, undefined);
  t.is(placement.mbrBootCode, undefined);
  const fat = placement.efiSystemImage as string;
  // Two directories and the image: nothing else, and a filesystem fsck finds clean.
  t.regex(execFileSync('fsck.fat', ['-n', fat], { encoding: 'utf8' }), /: 3 files, /);
  t.is(execFileSync('mdir', ['-b', '-i', fat, '::/EFI/BOOT'], { encoding: 'utf8' }).trim(), '::/EFI/BOOT/BOOTAA64.EFI');
  t.deepEqual(execFileSync('mtype', ['-i', fat, '::/EFI/BOOT/BOOTAA64.EFI']), efiImage);
  t.deepEqual(readFileSync(join(bootTree, 'vmlinuz'), 'utf8'), 'kernel');
});
