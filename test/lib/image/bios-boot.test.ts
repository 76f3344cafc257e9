import test from 'ava';
import { randomBytes } from 'node:crypto';
import { BiosBootError, embeddedCoreImage, mbrBootCode } from '../../../src/lib/image/bios-boot.ts';

/** A core.img as grub-mkimage writes it: diskboot's default blocklist (start 2, the sectors after it, segment 0x820). */
function fakeCoreImg(bytes: number): Buffer {
  const core = randomBytes(bytes);
  core.fill(0, 476, 500);
  core.writeBigUInt64LE(2n, 500);
  core.writeUInt16LE(Math.ceil(bytes / 512) - 1, 508);
  core.writeUInt16LE(0x820, 510);
  return core;
}

test('boot code points boot.img at core.img\'s first LBA, uses the BIOS boot drive and skips the floppy check', (t) => {
  const bootImg = randomBytes(512);
  const code = mbrBootCode(bootImg, 2048n);
  t.is(code.length, 440);
  t.is(code.readBigUInt64LE(0x5c), 2048n);
  t.is(code[0x64], 0xff);
  t.deepEqual([...code.subarray(0x66, 0x68)], [0x90, 0x90]);
  // The BPB area is what grub-bios-setup copies from a GPT disk's sector 0: zeros.
  t.true(code.subarray(0x03, 0x5a).every((byte) => byte === 0));
  // Everything else is boot.img's own code.
  t.deepEqual(code.subarray(0, 3), bootImg.subarray(0, 3));
  t.deepEqual(code.subarray(0x68, 440), bootImg.subarray(0x68, 440));
  t.throws(() => mbrBootCode(randomBytes(440), 2048n), { instanceOf: BiosBootError, message: /boot\.img must be 512 bytes/ });
});

test('core.img in BIOS-BOOT loads its remaining sectors from right after its first one', (t) => {
  const core = fakeCoreImg(512 * 60 + 100);
  const embedded = embeddedCoreImage(core, 2048n, 8192);
  t.is(embedded.length, 61 * 512);
  t.is(embedded.readBigUInt64LE(500), 2049n);
  t.is(embedded.readUInt16LE(508), 60);
  t.is(embedded.readUInt16LE(510), 0x820);
  t.true(embedded.subarray(488, 500).every((byte) => byte === 0), 'a terminator entry follows the only blocklist');
  t.deepEqual(embedded.subarray(512, core.length), core.subarray(512));
  t.true(embedded.subarray(core.length).every((byte) => byte === 0), 'the last sector is zero-padded');
});

test('a core.img that does not fit BIOS-BOOT, or is not grub-mkimage\'s i386-pc image, is refused', (t) => {
  t.throws(() => embeddedCoreImage(fakeCoreImg(512 * 20), 2048n, 10), { instanceOf: BiosBootError, message: /needs 20 sectors but BIOS-BOOT holds 10/ });
  t.throws(() => embeddedCoreImage(randomBytes(512 * 4), 2048n, 8192), { instanceOf: BiosBootError, message: /no default blocklist/ });
  t.throws(() => embeddedCoreImage(randomBytes(512), 2048n, 8192), { instanceOf: BiosBootError, message: /at least one more sector/ });
});
