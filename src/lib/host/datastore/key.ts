// Datastore key names: dotted segments, quoted segments may hold dots, and their on-disk encoding.

/** Data keys name values (`settings.motd`); metadata keys name a property of one (`affected-services`). */
export type KeyKind = 'data' | 'meta';

export const MAX_KEY_BYTES = 255;
const SEGMENT_CHAR = /^[a-zA-Z0-9_\-/]$/;
/** A segment from a JSON key (dots allowed: such segments are quoted in names); one test instead of one per character. */
const PLAIN_SEGMENT = /^[a-zA-Z0-9_\-/.]+$/;

export class KeyError extends Error {
  override readonly name = 'KeyError';
}

/**
 * Splits a key name into segments, enforcing the upstream grammar: `[a-zA-Z0-9_-/]` characters,
 * `.` only inside double quotes, no empty segments, no trailing dot, at most 255 bytes.
 */
export function parseKey(name: string, kind: KeyKind = 'data'): string[] {
  if (name.length === 0) throw new KeyError('Key name cannot be empty');
  if (Buffer.byteLength(name) > MAX_KEY_BYTES) {
    throw new KeyError(`Key name '${name}' is longer than ${MAX_KEY_BYTES} bytes`);
  }
  const segments: string[] = [];
  let index = 0;
  for (;;) {
    let segment = '';
    if (name[index] === '"') {
      const close = name.indexOf('"', index + 1);
      if (close < 0) throw new KeyError(`Key name '${name}' has unbalanced quotes`);
      segment = name.slice(index + 1, close);
      for (const char of segment) {
        if (char !== '.' && !SEGMENT_CHAR.test(char)) throw badChar(name, char);
      }
      index = close + 1;
      if (index < name.length && name[index] !== '.') {
        throw new KeyError(`Key name '${name}' has characters after a closing quote`);
      }
    } else {
      while (index < name.length && name[index] !== '.') {
        const char = name[index] as string;
        if (char === '"') throw new KeyError(`Key name '${name}' has a quote inside a segment`);
        if (!SEGMENT_CHAR.test(char)) throw badChar(name, char);
        segment += char;
        index += 1;
      }
    }
    if (segment.length === 0) throw new KeyError(`Key name '${name}' has an empty segment`);
    segments.push(segment);
    if (index >= name.length) break;
    index += 1; // the dot
    if (index >= name.length) throw new KeyError(`Key name '${name}' ends with a dot`);
  }
  if (kind === 'meta' && segments.length !== 1) {
    throw new KeyError(`Metadata key '${name}' must be a single segment`);
  }
  return segments;
}

function badChar(name: string, char: string): KeyError {
  return new KeyError(
    `Key name '${name}' contains invalid character '${char}'; allowed are a-z A-Z 0-9 _ - / and '.' inside quotes`,
  );
}

/** The canonical name of a segment list; segments holding a dot are quoted. */
export function keyName(segments: readonly string[]): string {
  return segments.map((segment) => (segment.includes('.') ? `"${segment}"` : segment)).join('.');
}

/** Checks segments built from JSON object keys, which never went through `parseKey`. */
export function checkSegments(segments: readonly string[]): string {
  for (const segment of segments) {
    if (PLAIN_SEGMENT.test(segment)) continue;
    if (segment.length === 0) throw new KeyError(`Empty key segment under '${keyName(segments)}'`);
    for (const char of segment) {
      if (char !== '.' && !SEGMENT_CHAR.test(char)) throw badChar(keyName(segments), char);
    }
  }
  const name = keyName(segments);
  if (Buffer.byteLength(name) > MAX_KEY_BYTES) {
    throw new KeyError(`Key name '${name}' is longer than ${MAX_KEY_BYTES} bytes`);
  }
  return name;
}

/** Percent-encodes everything but ASCII alphanumerics, `_` and `-` (so `.` → `%2E`, `/` → `%2F`). */
export function encodeSegment(segment: string): string {
  let out = '';
  for (const byte of Buffer.from(segment, 'utf8')) {
    const isPlain =
      (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) ||
      byte === 0x5f || byte === 0x2d;
    out += isPlain ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function decodeSegment(encoded: string): string {
  return decodeURIComponent(encoded);
}

/** True when `prefix` names `segments` itself or one of its ancestors (segment-aware). */
export function isSegmentPrefix(prefix: readonly string[], segments: readonly string[]): boolean {
  if (prefix.length > segments.length) return false;
  return prefix.every((segment, index) => segments[index] === segment);
}
