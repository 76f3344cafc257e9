// UEFI Secure Boot variables (PK, KEK, db as EFI_SIGNATURE_LISTs) and an OVMF variable store with them enrolled.
import { createHash } from 'node:crypto';
import { BrlError, ExitCode } from '../core/errors.ts';

/** A GUID in the mixed-endian layout UEFI stores (the first three fields little-endian). */
export function guidBytes(text: string): Buffer {
  const hex = text.replaceAll('-', '');
  const bytes = Buffer.from(hex, 'hex');
  bytes.subarray(0, 4).reverse();
  bytes.subarray(4, 6).reverse();
  bytes.subarray(6, 8).reverse();
  return bytes;
}

/** The text form of a GUID stored mixed-endian (the inverse of `guidBytes`). */
export function guidText(bytes: Buffer): string {
  const hex = Buffer.concat([
    Buffer.from(bytes.subarray(0, 4)).reverse(),
    Buffer.from(bytes.subarray(4, 6)).reverse(),
    Buffer.from(bytes.subarray(6, 8)).reverse(),
    bytes.subarray(8, 16),
  ]).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const efiGuids = {
  globalVariable: '8be4df61-93ca-11d2-aa0d-00e098032b8c',
  imageSecurityDatabase: 'd719b2cb-3d3a-4596-a3bc-dad00e67656f',
  certX509: 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072',
  secureBootEnableDisable: 'f0a30bc7-af08-4556-99c4-001009c93a44',
  authenticatedVariableStore: 'aaf32c78-947b-439a-a180-2e144ec37792',
  systemNvDataFv: 'fff12b8d-7696-4c8b-a985-2747075b4f50',
} as const;

/** NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS | TIME_BASED_AUTHENTICATED_WRITE_ACCESS: how firmware keeps PK, KEK, db and dbx. */
const nvBsRtTimeAuthenticated = 0x27;
/** NON_VOLATILE | BOOTSERVICE_ACCESS: EDK2's own switch, invisible to the OS. */
const nvBs = 0x03;

/** The owner recorded with each certificate: derived from the PK certificate, so the same keys give the same bytes. */
export function signatureOwner(pkCertificate: Buffer): string {
  const hash = createHash('sha256').update('brl secure boot owner\0').update(pkCertificate).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x40;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** An EFI_SIGNATURE_LIST of one X.509 certificate (DER). */
export function x509SignatureList(certificate: Buffer, owner: string): Buffer {
  const signatureSize = 16 + certificate.length;
  const header = Buffer.alloc(28);
  guidBytes(efiGuids.certX509).copy(header, 0);
  header.writeUInt32LE(28 + signatureSize, 16); // SignatureListSize
  header.writeUInt32LE(0, 20); // SignatureHeaderSize
  header.writeUInt32LE(signatureSize, 24);
  return Buffer.concat([header, guidBytes(owner), certificate]);
}

/** The X.509 certificates (DER) of a variable's EFI_SIGNATURE_LISTs; other signature types are skipped. */
export function x509CertificatesOf(lists: Buffer): Buffer[] {
  const certificates: Buffer[] = [];
  const x509 = guidBytes(efiGuids.certX509);
  let offset = 0;
  while (offset + 28 <= lists.length) {
    const listSize = lists.readUInt32LE(offset + 16);
    const headerSize = lists.readUInt32LE(offset + 20);
    const signatureSize = lists.readUInt32LE(offset + 24);
    if (listSize < 28 || offset + listSize > lists.length || signatureSize <= 16) break;
    if (lists.subarray(offset, offset + 16).equals(x509)) {
      for (let entry = offset + 28 + headerSize; entry + signatureSize <= offset + listSize; entry += signatureSize) {
        certificates.push(lists.subarray(entry + 16, entry + signatureSize));
      }
    }
    offset += listSize;
  }
  return certificates;
}

export interface EfiVariable {
  name: string;
  vendorGuid: string;
  attributes: number;
  data: Buffer;
}

/** db, KEK and PK with the project's certificates, as firmware keeps them: what OVMF's store and EC2's UefiData both carry. */
export function secureBootKeyVariables(certificates: { pk: Buffer; kek: Buffer; db: Buffer }): EfiVariable[] {
  const owner = signatureOwner(certificates.pk);
  const authenticated = (name: string, vendorGuid: string, certificate: Buffer): EfiVariable => ({
    name, vendorGuid, attributes: nvBsRtTimeAuthenticated, data: x509SignatureList(certificate, owner),
  });
  return [
    authenticated('db', efiGuids.imageSecurityDatabase, certificates.db),
    authenticated('KEK', efiGuids.globalVariable, certificates.kek),
    authenticated('PK', efiGuids.globalVariable, certificates.pk),
  ];
}

/** PK, KEK and db with the project's certificates, and Secure Boot switched on. */
export function secureBootVariables(certificates: { pk: Buffer; kek: Buffer; db: Buffer }): EfiVariable[] {
  return [
    ...secureBootKeyVariables(certificates),
    // EDK2 enforces signatures only in user mode (a PK is present) with SecureBootEnable set.
    { name: 'SecureBootEnable', vendorGuid: efiGuids.secureBootEnableDisable, attributes: nvBs, data: Buffer.from([1]) },
  ];
}

/** EDK2's AUTHENTICATED_VARIABLE_HEADER (60 bytes), name (UTF-16, NUL-terminated) and data, padded to 4 bytes. */
function encodeVariable(variable: EfiVariable): Buffer {
  const name = Buffer.from(`${variable.name}\0`, 'utf16le');
  const header = Buffer.alloc(60);
  header.writeUInt16LE(0x55aa, 0); // StartId
  header[2] = 0x3f; // State: VAR_ADDED
  header.writeUInt32LE(variable.attributes, 4);
  // MonotonicCount, TimeStamp (EFI_TIME) and PubKeyIndex stay zero: the first authenticated write is later than any.
  header.writeUInt32LE(name.length, 36);
  header.writeUInt32LE(variable.data.length, 40);
  guidBytes(variable.vendorGuid).copy(header, 44);
  const record = Buffer.concat([header, name, variable.data]);
  return Buffer.concat([record, Buffer.alloc((4 - (record.length % 4)) % 4, 0xff)]);
}

/** Where the variables of an EDK2 variable store FV start and end, checked against its headers. */
function variableArea(template: Buffer, source: string): { start: number; end: number } {
  const fail = (why: string) =>
    new BrlError(`${source} is not an empty OVMF variable store: ${why}`, {
      hint: 'use OVMF_VARS_4M.fd from Debian\'s ovmf package',
      exitCode: ExitCode.badInput,
      code: 'BAD_VARS_TEMPLATE',
    });
  if (template.length < 0x64 || template.toString('latin1', 0x28, 0x2c) !== '_FVH') throw fail('no firmware volume header');
  if (!template.subarray(0x10, 0x20).equals(guidBytes(efiGuids.systemNvDataFv))) throw fail('not a non-volatile data volume');
  const storeOffset = template.readUInt16LE(0x30);
  if (!template.subarray(storeOffset, storeOffset + 16).equals(guidBytes(efiGuids.authenticatedVariableStore))) throw fail('not an authenticated variable store');
  const start = storeOffset + 28;
  const end = storeOffset + template.readUInt32LE(storeOffset + 16);
  if (template.readUInt16LE(start) === 0x55aa) throw fail('it already holds variables');
  return { start, end };
}

/**
 * The template store (OVMF's empty VARS) with `variables` written at the start of its variable
 * area. The FV header and everything after the store (the fault-tolerant-write area) are kept as
 * they are, so the firmware takes the store as a healthy one it wrote itself.
 */
export function enrolledVariableStore(template: Buffer, variables: readonly EfiVariable[], source: string): Buffer {
  const area = variableArea(template, source);
  const records = Buffer.concat(variables.map(encodeVariable));
  if (area.start + records.length > area.end) {
    throw new BrlError(`the Secure Boot variables (${records.length} bytes) do not fit the variable store of ${source}`, {
      hint: 'use OVMF\'s 4 MiB build (OVMF_VARS_4M.fd)',
      exitCode: ExitCode.badInput,
      code: 'BAD_VARS_TEMPLATE',
    });
  }
  const store = Buffer.from(template);
  records.copy(store, area.start);
  return store;
}
