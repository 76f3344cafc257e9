// The boot loader's places on the OS disk: EFI-SYSTEM's FAT, the protective MBR's boot code and BIOS-BOOT, filled from the grub package's files.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { BiosBootError, embeddedCoreImage, mbrBootCode } from '../image/bios-boot.ts';
import { makeFatImage } from '../image/fat.ts';
import { MIB_SECTORS, findPlanned, type DiskPlan } from '../image/layout.ts';
import { fatVolumeId, type IdContext } from '../image/ids.ts';
import { walkTree } from './tree.ts';

/** Where the grub package installs its BIOS images, relative to /boot. */
const biosImagesDir = join('grub', 'i386-pc');
/**
 * Where it installs what a Secure Boot build makes GRUB's EFI image with (grub.spec: %{efi_kit}),
 * named for GRUB's platform of the arch: x86_64-efi, arm64-efi.
 */
const efiKitNames = ['x86_64-efi-kit', 'arm64-efi-kit'];

/** The boot loader files a variant's packages installed, taken out of the staged trees. */
export interface BootloaderFiles {
  /** Files for EFI-SYSTEM (from /boot/efi), relative paths under `efiTree`. */
  efiTree: string;
  efiFiles: string[];
  /** boot.img and core.img (from /boot/grub/i386-pc), when the packages ship them. */
  bios: { bootImg: string; coreImg: string } | undefined;
  /** grub-mkimage, modules and embedded config (from /boot/grub/<platform>-efi-kit), when the packages ship them. */
  efiKit: string | undefined;
}

/** What goes onto the OS disk besides the filesystems. */
export interface BootloaderPlacement {
  /** A FAT image for EFI-A, or none (the partition stays zero). */
  efiSystemImage: string | undefined;
  /** core.img patched for BIOS-BOOT, and boot.img's code for sector 0. */
  biosBootImage: string | undefined;
  mbrBootCode: Buffer | undefined;
}

/**
 * Moves /boot/grub/i386-pc and /boot/grub/<platform>-efi-kit out of the BOOT tree into `holdDir`, so
 * BIOS images and GRUB's build kit never land in the BOOT filesystem (the ESP's files are already
 * apart in `efiTree`). A variant without a boot loader package gets an empty result and keeps empty
 * EFI-SYSTEM and BIOS-BOOT partitions; aarch64's grub ships no BIOS images, so BIOS-BOOT stays empty
 * there, as upstream's.
 */
export async function takeBootloaderFiles(bootTree: string, efiTree: string, holdDir: string): Promise<BootloaderFiles> {
  const efiFiles = (await walkTree(efiTree)).filter((entry) => entry.kind === 'file').map((entry) => entry.path).sort();
  let efiKit: string | undefined;
  for (const kitName of efiKitNames.filter((name) => existsSync(join(bootTree, 'grub', name)))) {
    efiKit = join(holdDir, kitName);
    await mkdir(holdDir, { recursive: true });
    await rename(join(bootTree, 'grub', kitName), efiKit);
  }
  const fromBoot = join(bootTree, biosImagesDir);
  if (!existsSync(fromBoot)) {
    await removeEmptyGrubDir(bootTree);
    return { efiTree, efiFiles, bios: undefined, efiKit };
  }
  const held = join(holdDir, 'i386-pc');
  await mkdir(holdDir, { recursive: true });
  await rename(fromBoot, held);
  await removeEmptyGrubDir(bootTree);
  const bootImg = join(held, 'boot.img');
  const coreImg = join(held, 'core.img');
  if (!existsSync(bootImg) || !existsSync(coreImg)) {
    throw new BrlError('/boot/grub/i386-pc in the image must hold both boot.img and core.img', {
      hint: 'the grub package installs them; check the package that ships /boot/grub/i386-pc',
      exitCode: ExitCode.buildFailed,
      code: 'BAD_BOOTLOADER',
    });
  }
  return { efiTree, efiFiles, bios: { bootImg, coreImg }, efiKit };
}

/** /boot/grub that held only what was taken out: BOOT gets its grub.cfg directory later, as without GRUB. */
async function removeEmptyGrubDir(bootTree: string): Promise<void> {
  const grubDir = dirname(join(bootTree, biosImagesDir));
  if (existsSync(grubDir) && (await readdir(grubDir)).length === 0) await rmdir(grubDir);
}

/** Builds the EFI-SYSTEM FAT and the BIOS boot chain for `plan` into `tempDir`. */
export async function placeBootloader(
  files: BootloaderFiles,
  plan: DiskPlan,
  ids: IdContext,
  epoch: number,
  tempDir: string,
): Promise<BootloaderPlacement> {
  let efiSystemImage: string | undefined;
  if (files.efiFiles.length > 0) {
    efiSystemImage = join(tempDir, 'efi-system.fat');
    await makeFatImage(efiSystemImage, {
      sizeKiB: findPlanned(plan, 'EFI-A').sizeMiB * 1024,
      volumeId: fatVolumeId(ids),
      epoch,
      // FAT names are case-insensitive; firmware looks for \EFI\BOOT\BOOTX64.EFI (BOOTAA64.EFI on aarch64).
      files: files.efiFiles.map((path) => ({ source: join(files.efiTree, path), target: path.toUpperCase() })),
    });
  }
  if (files.bios === undefined) return { efiSystemImage, biosBootImage: undefined, mbrBootCode: undefined };
  const bios = findPlanned(plan, 'BIOS');
  const firstLba = BigInt(bios.startMiB * MIB_SECTORS);
  try {
    const core = embeddedCoreImage(await readFile(files.bios.coreImg), firstLba, bios.sizeMiB * MIB_SECTORS);
    const biosBootImage = join(tempDir, 'bios-boot.img');
    await writeFile(biosBootImage, core);
    return { efiSystemImage, biosBootImage, mbrBootCode: mbrBootCode(await readFile(files.bios.bootImg), firstLba) };
  } catch (error) {
    if (!(error instanceof BiosBootError)) throw error;
    throw new BrlError(`GRUB's BIOS images cannot be installed: ${error.message}`, {
      hint: 'rebuild the grub package (brl build package grub --force)',
      exitCode: ExitCode.buildFailed,
      code: 'BAD_BOOTLOADER',
    });
  }
}
