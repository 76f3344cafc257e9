// A small PE32+ EFI application written byte by byte: three sections, a gap-free layout and trailing data after the last section.
import { randomBytes } from 'node:crypto';

const fileAlignment = 0x200;
const sizeOfHeaders = 0x400;

/** Sections of the given sizes (multiples of 512) with random contents, plus `trailingBytes` after them. */
export function makePeImage(sectionSizes: number[] = [0x1000, 0x600, 0x200], trailingBytes = 24): Buffer {
  const sectionsSize = sectionSizes.reduce((sum, size) => sum + size, 0);
  const image = Buffer.alloc(sizeOfHeaders + sectionsSize + trailingBytes);
  image.write('MZ', 0, 'latin1');
  const pe = 0x40;
  image.writeUInt32LE(pe, 0x3c);
  image.write('PE\0\0', pe, 'latin1');
  image.writeUInt16LE(0x8664, pe + 4); // x86-64
  image.writeUInt16LE(sectionSizes.length, pe + 6);
  image.writeUInt16LE(240, pe + 20); // PE32+ optional header with 16 data directories
  image.writeUInt16LE(0x0022, pe + 22); // executable, large-address aware
  const optional = pe + 24;
  image.writeUInt16LE(0x20b, optional);
  image.writeUInt32LE(0x1000, optional + 16); // entry point
  image.writeUInt32LE(0x1000, optional + 20); // base of code
  image.writeUInt32LE(0x1000, optional + 32); // section alignment
  image.writeUInt32LE(fileAlignment, optional + 36);
  image.writeUInt32LE(0x1000 * (sectionSizes.length + 1), optional + 56); // size of image
  image.writeUInt32LE(sizeOfHeaders, optional + 60);
  image.writeUInt16LE(10, optional + 68); // EFI application
  image.writeUInt32LE(16, optional + 108);
  const sectionTable = optional + 240;
  let offset = sizeOfHeaders;
  sectionSizes.forEach((size, index) => {
    const entry = sectionTable + index * 40;
    image.write(`.s${index}`, entry, 'latin1');
    image.writeUInt32LE(size, entry + 8);
    image.writeUInt32LE(0x1000 * (index + 1), entry + 12);
    image.writeUInt32LE(size, entry + 16);
    image.writeUInt32LE(offset, entry + 20);
    image.writeUInt32LE(0x60000020, entry + 36); // code, execute, read
    randomBytes(size).copy(image, offset);
    offset += size;
  });
  randomBytes(trailingBytes).copy(image, offset);
  return image;
}
