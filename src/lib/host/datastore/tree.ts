// Conversion between nested JSON documents and the datastore's flat key → value form.
import { checkSegments } from './key.ts';

export type JsonObject = Record<string, unknown>;

export interface FlatEntry {
  segments: string[];
  name: string;
  /** `null` only in PATCH bodies, where it asks for removal. */
  value: unknown;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Leaves of `document` (arrays are leaves) as keys below `base`; JSON object keys become segments. */
export function flatten(document: unknown, base: readonly string[] = []): FlatEntry[] {
  const entries: FlatEntry[] = [];
  const walk = (value: unknown, segments: string[]): void => {
    if (isJsonObject(value)) {
      for (const [field, child] of Object.entries(value)) walk(child, [...segments, field]);
      return;
    }
    entries.push({ segments, name: checkSegments(segments), value });
  };
  walk(document, [...base]);
  return entries;
}

/** Builds the nested document from flat entries; `strip` leading segments are dropped. */
export function unflatten(entries: Iterable<{ segments: readonly string[]; value: unknown }>, strip = 0): JsonObject {
  const root: JsonObject = {};
  for (const { segments, value } of entries) {
    const path = segments.slice(strip);
    if (path.length === 0) continue;
    let node = root;
    for (const segment of path.slice(0, -1)) {
      const next = node[segment];
      if (isJsonObject(next)) {
        node = next;
      } else {
        const created: JsonObject = {};
        node[segment] = created;
        node = created;
      }
    }
    node[path.at(-1) as string] = value;
  }
  return root;
}

/** Recursive merge: objects merge, anything else from `overlay` replaces. Returns a new object. */
export function deepMerge(base: JsonObject, overlay: JsonObject): JsonObject {
  const merged: JsonObject = { ...base };
  for (const [field, value] of Object.entries(overlay)) {
    const existing = merged[field];
    merged[field] = isJsonObject(existing) && isJsonObject(value) ? deepMerge(existing, value) : value;
  }
  return merged;
}
