// GRUB's i386-pc boot chain on a GPT disk: boot.img in the protective MBR, core.img in BIOS-BOOT — what grub-bios-setup writes for an embedding area.
import { SECTOR_SIZE } from './gpt.ts';

/** Where boot.img keeps the LBA of core.img's first sector (64-bit little-endian). */
export const BOOT_IMG_KERNEL_SECTOR = 0x5c;
/** boot.img's boot drive byte: 0xff means "the drive the BIOS booted from" (DL). */
export const BOOT_IMG_BOOT_DRIVE = 0x64;
/** boot.img's jump over the hard-disk check, replaced by two NOPs for hard disks. */
export const BOOT_IMG_DRIVE_CHECK = 0x66;
/** The BIOS parameter block area boot.img leaves for a filesystem's BPB. */
const BOOT_IMG_BPB = { start: 0x03, end: 0x5a } as const;
/** The MBR's boot code ends where the disk signature and partition table begin. */
export const MBR_BOOT_CODE_BYTES = 440;
/** One blocklist entry at the end of core.img's first sector: start LBA (u64), sectors (u16), load segment (u16). */
const BLOCKLIST_ENTRY = 12;
/** Where the rest of core.img is loaded: GRUB_BOOT_I386_PC_KERNEL_SEG (0x800) plus the first sector. */
const CORE_LOAD_SEGMENT = 0x800 + SECTOR_SIZE / 16;
/** The real-mode loader reads core.img below 0x78000 (grub-bios-setup's limit on embedded sectors). */
const MAX_CORE_SECTORS = (0x78000 - 0x8200) / SECTOR_SIZE;

export class BiosBootError extends Error {}

/**
 * The 440 bytes of MBR boot code: boot.img pointing at core.img's first sector `coreLba`, with
 * the drive check disabled and an empty BPB, as grub-bios-setup leaves it on a hard disk whose
 * sector 0 holds no BPB. The disk signature, partition table and 0x55AA stay the protective MBR's.
 */
export function mbrBootCode(bootImg: Uint8Array, coreLba: bigint): Buffer {
  if (bootImg.length !== SECTOR_SIZE) throw new BiosBootError(`boot.img must be ${SECTOR_SIZE} bytes, got ${bootImg.length}`);
  const code = Buffer.from(bootImg.subarray(0, MBR_BOOT_CODE_BYTES));
  code.fill(0, BOOT_IMG_BPB.start, BOOT_IMG_BPB.end);
  code.writeBigUInt64LE(coreLba, BOOT_IMG_KERNEL_SECTOR);
  code[BOOT_IMG_BOOT_DRIVE] = 0xff;
  code[BOOT_IMG_DRIVE_CHECK] = 0x90;
  code[BOOT_IMG_DRIVE_CHECK + 1] = 0x90;
  return code;
}

/**
 * core.img for contiguous sectors from `firstLba`: its first sector (diskboot) gets one blocklist
 * entry for the sectors after it, loaded at segment 0x820, followed by a terminator. No
 * Reed-Solomon codes are added (`grub-bios-setup --no-rs-codes`), so the image is zero-padded
 * to whole sectors and fits exactly.
 */
export function embeddedCoreImage(coreImg: Uint8Array, firstLba: bigint, areaSectors: number): Buffer {
  const sectors = Math.ceil(coreImg.length / SECTOR_SIZE);
  if (sectors < 2) throw new BiosBootError(`core.img is ${coreImg.length} bytes; it needs diskboot and at least one more sector`);
  if (sectors > areaSectors) throw new BiosBootError(`core.img needs ${sectors} sectors but BIOS-BOOT holds ${areaSectors}`);
  if (sectors > MAX_CORE_SECTORS) throw new BiosBootError(`core.img needs ${sectors} sectors; the BIOS loader reads at most ${MAX_CORE_SECTORS}`);
  const image = Buffer.alloc(sectors * SECTOR_SIZE);
  image.set(coreImg);
  const first = SECTOR_SIZE - BLOCKLIST_ENTRY;
  // grub-mkimage leaves the default list (start 2, the sectors after diskboot): it must be the only entry.
  if (image.readUInt16LE(first + 8) !== sectors - 1 || image.readUInt16LE(first + 10) !== CORE_LOAD_SEGMENT) {
    throw new BiosBootError('core.img\'s first sector has no default blocklist (is it an i386-pc core image from grub-mkimage?)');
  }
  image.writeBigUInt64LE(firstLba + 1n, first);
  image.writeUInt16LE(sectors - 1, first + 8);
  image.writeUInt16LE(CORE_LOAD_SEGMENT, first + 10);
  image.fill(0, first - BLOCKLIST_ENTRY, first);
  return image;
}
