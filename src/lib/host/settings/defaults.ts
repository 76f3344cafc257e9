// Settings defaults: TOML fragments merged in order into the one document storewolf seeds from.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { errnoCode } from '../../core/errors.ts';
import { deepMerge, isJsonObject, type JsonObject } from '../datastore/tree.ts';

/** storewolf's input on a host (a link to `usr/share/storewolf/<variant>.toml`). */
export const DEFAULTS_PATH = 'etc/storewolf/defaults.toml';

/** Merges fragments in order: tables merge recursively, later scalars and arrays replace earlier ones. */
export function mergeFragments(fragments: readonly JsonObject[]): JsonObject {
  return fragments.reduce<JsonObject>((merged, fragment) => deepMerge(merged, fragment), {});
}

export async function loadFragment(path: string): Promise<JsonObject> {
  const text = await readFile(path, 'utf8');
  try {
    return plain(parse(text)) as JsonObject;
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message.split('\n')[0]}`, { cause: error });
  }
}

/** The merged defaults of a root, or `{}` when it ships none. */
export async function loadRootDefaults(root: string): Promise<JsonObject> {
  try {
    return await loadFragment(join(root, DEFAULTS_PATH));
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return {};
    throw error;
  }
}

/** TOML dates become strings so every value is plain JSON. */
function plain(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(plain);
  if (isJsonObject(value)) return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, plain(child)]));
  return value;
}
