// PE/COFF layout as Authenticode needs it: the image hash, the certificate table and the header checksum.
import { createHash } from 'node:crypto';

/** Where the fields Authenticode skips or rewrites lie in one PE file. */
export interface PeLayout {
  checksumOffset: number;
  /** The certificate table's data directory entry (IMAGE_DIRECTORY_ENTRY_SECURITY): file offset and size. */
  certificateDirectoryOffset: number;
  certificateTable: { offset: number; size: number };
  sizeOfHeaders: number;
  /** Raw data of every section that has some, by file offset. */
  sections: { offset: number; size: number }[];
}

export class PeFormatError extends Error {}

const securityDirectoryIndex = 4;

export function readPeLayout(image: Buffer): PeLayout {
  const need = (condition: boolean, what: string) => {
    if (!condition) throw new PeFormatError(what);
  };
  need(image.length >= 0x40 && image.toString('latin1', 0, 2) === 'MZ', 'no MZ header');
  const peOffset = image.readUInt32LE(0x3c);
  need(peOffset + 24 <= image.length && image.toString('latin1', peOffset, peOffset + 4) === 'PE\0\0', 'no PE signature');
  const sectionCount = image.readUInt16LE(peOffset + 6);
  const optionalHeaderSize = image.readUInt16LE(peOffset + 20);
  const optional = peOffset + 24;
  need(optional + optionalHeaderSize <= image.length, 'optional header runs past the end');
  const magic = image.readUInt16LE(optional);
  need(magic === 0x10b || magic === 0x20b, `unknown optional header magic 0x${magic.toString(16)}`);
  const directories = optional + (magic === 0x20b ? 112 : 96);
  const directoryCount = image.readUInt32LE(optional + (magic === 0x20b ? 108 : 92));
  need(directoryCount > securityDirectoryIndex, 'no certificate table directory entry');
  const certificateDirectoryOffset = directories + securityDirectoryIndex * 8;
  need(certificateDirectoryOffset + 8 <= optional + optionalHeaderSize, 'certificate table entry outside the optional header');
  const sizeOfHeaders = image.readUInt32LE(optional + 60);
  need(sizeOfHeaders <= image.length, 'SizeOfHeaders runs past the end');
  const sectionTable = optional + optionalHeaderSize;
  need(sectionTable + sectionCount * 40 <= sizeOfHeaders, 'section table outside the headers');
  const sections: { offset: number; size: number }[] = [];
  for (let index = 0; index < sectionCount; index += 1) {
    const entry = sectionTable + index * 40;
    const size = image.readUInt32LE(entry + 16);
    const offset = image.readUInt32LE(entry + 20);
    if (size === 0) continue;
    need(offset + size <= image.length, `section ${index} runs past the end of the file`);
    sections.push({ offset, size });
  }
  sections.sort((a, b) => a.offset - b.offset);
  const certificateTable = { offset: image.readUInt32LE(certificateDirectoryOffset), size: image.readUInt32LE(certificateDirectoryOffset + 4) };
  if (certificateTable.size > 0) {
    // Authenticode hashes everything before the table: it must be the file's last bytes.
    need(certificateTable.offset + certificateTable.size === image.length, 'the certificate table is not at the end of the file');
  }
  return { checksumOffset: optional + 64, certificateDirectoryOffset, certificateTable, sizeOfHeaders, sections };
}

/**
 * The Authenticode image hash (SHA-256), as UEFI firmware computes it: the headers without the
 * checksum and the certificate table entry, the sections in file order, then whatever follows
 * the bytes hashed so far up to the certificate table.
 */
export function authenticodeHash(image: Buffer, layout: PeLayout = readPeLayout(image)): Buffer {
  const hash = createHash('sha256');
  hash.update(image.subarray(0, layout.checksumOffset));
  hash.update(image.subarray(layout.checksumOffset + 4, layout.certificateDirectoryOffset));
  hash.update(image.subarray(layout.certificateDirectoryOffset + 8, layout.sizeOfHeaders));
  let hashedBytes = layout.sizeOfHeaders;
  for (const section of layout.sections) {
    hash.update(image.subarray(section.offset, section.offset + section.size));
    hashedBytes += section.size;
  }
  const end = image.length - layout.certificateTable.size;
  if (end > hashedBytes) hash.update(image.subarray(hashedBytes, end));
  return hash.digest();
}

/** The PE header checksum: 16-bit one's-complement-style sum of the file (checksum field as zero) plus its length. */
export function peChecksum(image: Buffer, checksumOffset: number): number {
  let sum = 0;
  for (let offset = 0; offset < image.length; offset += 2) {
    if (offset === checksumOffset || offset === checksumOffset + 2) continue;
    const word = offset + 1 < image.length ? image.readUInt16LE(offset) : image[offset]!;
    sum += word;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  sum = (sum & 0xffff) + (sum >>> 16);
  return (sum + image.length) >>> 0;
}

/** The image without its certificate table, padded to 8 bytes, as the bytes a new signature covers. */
export function unsignedImage(image: Buffer): Buffer {
  const layout = readPeLayout(image);
  const end = layout.certificateTable.size > 0 ? layout.certificateTable.offset : image.length;
  const padded = Buffer.alloc(Math.ceil(end / 8) * 8);
  image.copy(padded, 0, 0, end);
  padded.writeUInt32LE(0, layout.certificateDirectoryOffset);
  padded.writeUInt32LE(0, layout.certificateDirectoryOffset + 4);
  return padded;
}

/** Appends a WIN_CERTIFICATE holding `pkcs7` to an unsigned, 8-byte-aligned image; updates the directory entry and the checksum. */
export function attachSignature(unsigned: Buffer, pkcs7: Buffer): Buffer {
  const layout = readPeLayout(unsigned);
  const entryLength = Math.ceil((8 + pkcs7.length) / 8) * 8;
  const entry = Buffer.alloc(entryLength);
  entry.writeUInt32LE(entryLength, 0);
  entry.writeUInt16LE(0x0200, 4); // WIN_CERT_REVISION_2_0
  entry.writeUInt16LE(0x0002, 6); // WIN_CERT_TYPE_PKCS_SIGNED_DATA
  pkcs7.copy(entry, 8);
  const signed = Buffer.concat([unsigned, entry]);
  signed.writeUInt32LE(unsigned.length, layout.certificateDirectoryOffset);
  signed.writeUInt32LE(entryLength, layout.certificateDirectoryOffset + 4);
  signed.writeUInt32LE(peChecksum(signed, layout.checksumOffset), layout.checksumOffset);
  return signed;
}

