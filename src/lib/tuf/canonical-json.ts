// Canonical JSON (OLPC rules, as tough's olpc-cjson and @tufjs/canonical-json emit it): the bytes TUF signs.

/** A JSON value as TUF metadata holds it: integers only, no `undefined`. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * No whitespace, object keys sorted by UTF-16 code units, strings escaping only `"` and `\`
 * (every other character is emitted literally), integers only.
 */
export function canonicalize(value: unknown): string {
  const parts: string[] = [];
  write(value, parts, quote);
  return parts.join('');
}

/**
 * The same sorted, whitespace-free form with standard JSON string escapes. Canonical JSON keeps
 * control characters literal (the newlines of a PEM key), which JSON parsers reject, so files
 * are written in this form: deterministic, and byte-identical to the canonical form whenever no
 * string holds a control character.
 */
export function sortedJson(value: unknown): string {
  const parts: string[] = [];
  write(value, parts, (text) => JSON.stringify(text));
  return parts.join('');
}

export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}

function write(value: unknown, out: string[], quoteString: (text: string) => string): void {
  if (value === null) {
    out.push('null');
  } else if (typeof value === 'boolean') {
    out.push(value ? 'true' : 'false');
  } else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError(`canonical JSON allows only integers, got ${value}`);
    out.push(String(value));
  } else if (typeof value === 'string') {
    out.push(quoteString(value));
  } else if (Array.isArray(value)) {
    out.push('[');
    value.forEach((item, index) => {
      if (index > 0) out.push(',');
      write(item, out, quoteString);
    });
    out.push(']');
  } else if (typeof value === 'object') {
    const object = value as Record<string, unknown>;
    const keys = Object.keys(object).sort();
    out.push('{');
    let first = true;
    for (const key of keys) {
      const item = object[key];
      if (item === undefined) throw new TypeError(`canonical JSON has no undefined (key ${JSON.stringify(key)})`);
      if (!first) out.push(',');
      first = false;
      out.push(quoteString(key), ':');
      write(item, out, quoteString);
    }
    out.push('}');
  } else {
    throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
  }
}

const needsEscape = /["\\]/g;

function quote(text: string): string {
  return `"${text.replace(needsEscape, (character) => `\\${character}`)}"`;
}
