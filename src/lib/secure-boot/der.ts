// ASN.1 DER: the encoder X.509 certificates and Authenticode's PKCS#7 are written with, and a reader for the fields brl takes from certificates.

/** One encoded element: tag, length and contents. */
export type Der = Buffer;

function lengthBytes(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, contents: Uint8Array): Der {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(contents.length), contents]);
}

export function sequence(...elements: Der[]): Der {
  return tlv(0x30, Buffer.concat(elements));
}

/** SET OF: DER orders the elements by their encodings. */
export function setOf(...elements: Der[]): Der {
  return tlv(0x31, Buffer.concat([...elements].sort(Buffer.compare)));
}

/** A non-negative INTEGER from a bigint or from big-endian bytes. */
export function integer(value: bigint | Uint8Array): Der {
  let bytes: Buffer;
  if (typeof value === 'bigint') {
    const hex = value.toString(16);
    bytes = Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex');
  } else {
    bytes = Buffer.from(value);
  }
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0 && bytes[start + 1]! < 0x80) start += 1;
  bytes = bytes.subarray(start);
  if (bytes.length === 0 || bytes[0]! >= 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, bytes);
}

export function objectId(dotted: string): Der {
  const arcs = dotted.split('.').map(BigInt);
  const body: number[] = [Number(arcs[0]! * 40n + arcs[1]!)];
  for (const arc of arcs.slice(2)) {
    const septets: number[] = [];
    for (let rest = arc; ; rest >>= 7n) {
      septets.unshift(Number(rest & 0x7fn) | (septets.length > 0 ? 0x80 : 0));
      if (rest < 0x80n) break;
    }
    body.push(...septets);
  }
  return tlv(0x06, Buffer.from(body));
}

export const nullValue: Der = Buffer.from([0x05, 0x00]);

export function boolean(value: boolean): Der {
  return tlv(0x01, Buffer.from([value ? 0xff : 0x00]));
}

export function octetString(bytes: Uint8Array): Der {
  return tlv(0x04, bytes);
}

/** A BIT STRING of whole bytes (no unused bits). */
export function bitString(bytes: Uint8Array): Der {
  return tlv(0x03, Buffer.concat([Buffer.from([0]), bytes]));
}

export function utf8String(text: string): Der {
  return tlv(0x0c, Buffer.from(text, 'utf8'));
}

/** UTF-16BE, as Authenticode's SpcString spells its `<<<Obsolete>>>` link. */
export function bmpBytes(text: string): Buffer {
  return Buffer.from(text, 'utf16le').swap16();
}

/** RFC 5280: UTCTime through 2049, GeneralizedTime from 2050; seconds, no fraction. */
export function time(date: Date): Der {
  const iso = date.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:T]/g, '');
  const year = date.getUTCFullYear();
  return year < 2050 ? tlv(0x17, Buffer.from(iso.slice(2), 'ascii')) : tlv(0x18, Buffer.from(iso, 'ascii'));
}

/** `[n]` with the contents given: EXPLICIT wraps whole elements, IMPLICIT replaces a constructed element's tag. */
export function contextConstructed(tagNumber: number, contents: Uint8Array): Der {
  return tlv(0xa0 | tagNumber, contents);
}

export function contextPrimitive(tagNumber: number, contents: Uint8Array): Der {
  return tlv(0x80 | tagNumber, contents);
}

/** An element found by the reader: where it starts and its contents. */
export interface DerElement {
  tag: number;
  /** The whole element (tag, length, contents). */
  raw: Buffer;
  contents: Buffer;
}

/** Reads the element at `offset`; throws on truncated or indefinite-length input. */
export function readElement(bytes: Buffer, offset = 0): DerElement {
  const tag = bytes[offset];
  const first = bytes[offset + 1];
  if (tag === undefined || first === undefined) throw new Error('DER: truncated element');
  let length = first;
  let headerLength = 2;
  if (first >= 0x80) {
    const count = first & 0x7f;
    if (count === 0 || count > 4) throw new Error('DER: unsupported length');
    length = 0;
    for (let index = 0; index < count; index += 1) length = length * 256 + bytes[offset + 2 + index]!;
    headerLength += count;
  }
  const end = offset + headerLength + length;
  if (end > bytes.length) throw new Error('DER: element runs past the end');
  return { tag, raw: bytes.subarray(offset, end), contents: bytes.subarray(offset + headerLength, end) };
}

/** The elements inside a constructed element. */
export function children(element: DerElement): DerElement[] {
  const result: DerElement[] = [];
  for (let offset = 0; offset < element.contents.length; ) {
    const child = readElement(element.contents, offset);
    result.push(child);
    offset += child.raw.length;
  }
  return result;
}
