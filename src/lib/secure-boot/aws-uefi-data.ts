// EC2's UEFI variable store (RegisterImage `UefiData`, DescribeImageAttribute uefiData): the "AMZNUEFI" v0 blob.
// Layout as awslabs/python-uefivars documents it: base64 of magic "AMZNUEFI", CRC32C (u32 LE) of all that follows,
// version (u32 LE, 0), then a zlib stream made with the v0 preset dictionary. Inside: u64 count, then per variable
// a length-prefixed (u64 LE) UTF-8 name, length-prefixed data, the vendor GUID (16 bytes, mixed-endian), the
// attributes (u32 LE) and, for time-based authenticated variables, an EFI_TIME (16 bytes) and a length-prefixed digest.
import { deflateSync, inflateSync } from 'node:zlib';
import { BrlError, ExitCode } from '../core/errors.ts';
import { awsUefiDataDictionary } from './aws-uefi-data-dictionary.ts';
import { efiGuids, guidBytes, guidText, secureBootKeyVariables, x509CertificatesOf } from './efi-variables.ts';
import type { FirmwareCertificates } from './key-set.ts';

const magic = Buffer.from('AMZNUEFI', 'latin1');
const formatVersion = 0;
const timeBasedAuthenticated = 0x20;
const efiTimeBytes = 16;
/** What EC2 and python-uefivars write when no authenticated write has recorded a signer. */
const emptyDigest = Buffer.alloc(32);

/** EC2 refuses a RegisterImage whose UefiData (the base64 text) is longer. */
export const maxUefiDataBytes = 64 * 1024;

export interface AwsUefiVariable {
  name: string;
  vendorGuid: string;
  attributes: number;
  data: Buffer;
  /** EFI_TIME of the last authenticated write; only time-based authenticated variables carry it (default all zero). */
  timestamp?: Buffer;
  /** Only time-based authenticated variables carry it (default 32 zero bytes). */
  digest?: Buffer;
}

const crc32cTable = (() => {
  const table = new Uint32Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
    table[byte] = crc >>> 0;
  }
  return table;
})();

/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), which node:crypto and node:zlib do not offer. */
export function crc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = crc32cTable[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** EFI_TIME in UTC (year, month, day, hour, minute, second; nanoseconds, time zone and daylight zero), as authenticated writes record it. */
export function efiTime(time: Date): Buffer {
  const bytes = Buffer.alloc(efiTimeBytes);
  bytes.writeUInt16LE(time.getUTCFullYear(), 0);
  bytes[2] = time.getUTCMonth() + 1;
  bytes[3] = time.getUTCDate();
  bytes[4] = time.getUTCHours();
  bytes[5] = time.getUTCMinutes();
  bytes[6] = time.getUTCSeconds();
  return bytes;
}

const u64 = (value: number) => {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(BigInt(value));
  return bytes;
};
const u32 = (value: number) => {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(value >>> 0);
  return bytes;
};
const lengthPrefixed = (data: Buffer) => Buffer.concat([u64(data.length), data]);

/** The base64 blob EC2 takes as UefiData. */
export function encodeAwsUefiData(variables: readonly AwsUefiVariable[]): string {
  const fields: Buffer[] = [u64(variables.length)];
  for (const variable of variables) {
    fields.push(lengthPrefixed(Buffer.from(variable.name, 'utf8')), lengthPrefixed(variable.data), guidBytes(variable.vendorGuid), u32(variable.attributes));
    if (variable.attributes & timeBasedAuthenticated) {
      fields.push(variable.timestamp ?? Buffer.alloc(efiTimeBytes), lengthPrefixed(variable.digest ?? emptyDigest));
    }
  }
  const compressed = deflateSync(Buffer.concat(fields), { level: 9, dictionary: awsUefiDataDictionary });
  const checked = Buffer.concat([u32(formatVersion), compressed]);
  return Buffer.concat([magic, u32(crc32c(checked)), checked]).toString('base64');
}

/** Reads a UefiData blob back; `source` names it in errors (a file, or a region's AMI). */
export function decodeAwsUefiData(text: string, source: string): AwsUefiVariable[] {
  const fail = (why: string, cause?: unknown) =>
    new BrlError(`${source} is not an EC2 UEFI variable store: ${why}`, {
      hint: 'UefiData is the base64 "AMZNUEFI" blob that brl ami publish or python-uefivars (-o aws) writes',
      exitCode: ExitCode.badInput,
      code: 'BAD_UEFI_DATA',
      ...(cause === undefined ? {} : { cause }),
    });
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) throw fail('not base64');
  const blob = Buffer.from(compact, 'base64');
  if (blob.length < 16 || !blob.subarray(0, 8).equals(magic)) throw fail('no AMZNUEFI magic');
  const checked = blob.subarray(12);
  const stored = blob.readUInt32LE(8);
  if (crc32c(checked) !== stored) throw fail(`CRC32C is ${crc32c(checked).toString(16)}, the header says ${stored.toString(16)} (truncated or altered)`);
  const version = checked.readUInt32LE(0);
  if (version !== formatVersion) throw fail(`version ${version}, only version 0 is known`);
  let plain: Buffer;
  try {
    plain = inflateSync(checked.subarray(4), { dictionary: awsUefiDataDictionary });
  } catch (error) {
    throw fail(`the variable list does not inflate (${(error as Error).message})`, error);
  }
  let offset = 0;
  const take = (size: number) => {
    if (size > plain.length - offset) throw fail(`the variable list ends inside a field at byte ${offset}`);
    const field = plain.subarray(offset, offset + size);
    offset += size;
    return field;
  };
  const takeLength = () => Number(take(8).readBigUInt64LE());
  const count = takeLength();
  const variables: AwsUefiVariable[] = [];
  for (let index = 0; index < count; index++) {
    const name = take(takeLength()).toString('utf8');
    const data = Buffer.from(take(takeLength()));
    const vendorGuid = guidText(take(16));
    const attributes = take(4).readUInt32LE(0);
    const variable: AwsUefiVariable = { name, vendorGuid, attributes, data };
    if (attributes & timeBasedAuthenticated) {
      variable.timestamp = Buffer.from(take(efiTimeBytes));
      variable.digest = Buffer.from(take(takeLength()));
    }
    variables.push(variable);
  }
  if (offset !== plain.length) throw fail(`${plain.length - offset} bytes follow the ${count} variables`);
  return variables;
}

/**
 * The UefiData of a Secure Boot image: PK, KEK and db with the key set's certificates (the variables
 * `brl vm run --secure-boot` enrolls), time-based authenticated, last written at `writtenAt` (the build's
 * SOURCE_DATE_EPOCH; without one the all-zero time EC2's own exports carry), so the same keys and build
 * give the same bytes. A later signed update of db or KEK must carry a newer time.
 */
export function secureBootUefiData(certificates: FirmwareCertificates, writtenAt: Date | undefined): string {
  const timestamp = writtenAt === undefined ? Buffer.alloc(efiTimeBytes) : efiTime(writtenAt);
  return encodeAwsUefiData(secureBootKeyVariables(certificates).map((variable) => ({ ...variable, timestamp, digest: emptyDigest })));
}

/** Refuses UefiData EC2 would refuse for its size, before anything is uploaded. */
export function assertUefiDataFits(uefiData: string, source: string): void {
  if (uefiData.length > maxUefiDataBytes) {
    throw new BrlError(`the UEFI data of ${source} is ${uefiData.length} bytes of base64; EC2 takes at most ${maxUefiDataBytes}`, {
      hint: 'enroll fewer or smaller certificates (PK, KEK and db of one key set fit easily)',
      exitCode: ExitCode.badInput,
      code: 'UEFI_DATA_TOO_LARGE',
    });
  }
}

/** The X.509 certificates (DER) that PK, KEK and db of a variable store hold; a missing variable holds none. */
export function secureBootCertificatesIn(variables: readonly AwsUefiVariable[]): { pk: Buffer[]; kek: Buffer[]; db: Buffer[] } {
  const certificatesOf = (name: string, vendorGuid: string) =>
    variables.filter((variable) => variable.name === name && variable.vendorGuid === vendorGuid).flatMap((variable) => x509CertificatesOf(variable.data));
  return {
    pk: certificatesOf('PK', efiGuids.globalVariable),
    kek: certificatesOf('KEK', efiGuids.globalVariable),
    db: certificatesOf('db', efiGuids.imageSecurityDatabase),
  };
}
