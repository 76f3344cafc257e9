// A variant's settings model: the groups it includes, checked on PATCH and again on the merged result.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { errnoCode } from '../../core/errors.ts';
import { parseKey } from '../datastore/key.ts';
import { isJsonObject, type JsonObject } from '../datastore/tree.ts';
import { ALL_GROUPS, SETTINGS_GROUPS } from './groups.ts';
import { checkValue, type Schema } from './schema.ts';

/** Where a root holds the variant's model: `groups = ["motd", "updates", …]`. */
export const MODEL_PATH = 'usr/share/brl/settings-model.toml';

export class SettingsModel {
  readonly schema: Schema;
  readonly groups: readonly string[];

  constructor(groups: readonly string[]) {
    this.groups = groups;
    const fields: Record<string, Schema> = {};
    for (const group of groups) {
      const schema = SETTINGS_GROUPS[group];
      if (!schema) throw new Error(`unknown settings group '${group}' (known: ${ALL_GROUPS.join(', ')})`);
      fields[group] = schema;
    }
    this.schema = { kind: 'struct', fields };
  }

  /** A PATCH fragment (without the `settings` wrapper); `null` marks removals. */
  checkPatch(fragment: unknown): void {
    checkValue(this.schema, fragment, 'settings', { allowNull: true });
  }

  /** The settings a commit would leave: the whole document, or the groups the commit touches. */
  checkCommitted(settings: JsonObject): void {
    checkValue(this.schema, settings, 'settings', { allowNull: false });
  }

  /** Reads `usr/share/brl/settings-model.toml` under `root`; a root without one gets every group. */
  static async load(root: string): Promise<SettingsModel> {
    const path = join(root, MODEL_PATH);
    try {
      return SettingsModel.parse(await readFile(path, 'utf8'), path);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return new SettingsModel(ALL_GROUPS);
      throw error;
    }
  }

  /** A model document: `groups = ["motd", "updates", …]`. */
  static parse(text: string, source: string): SettingsModel {
    const data = parse(text) as { groups?: unknown };
    if (!Array.isArray(data.groups) || data.groups.some((group) => typeof group !== 'string')) {
      throw new Error(`${source}: 'groups' must be a list of settings group names`);
    }
    return new SettingsModel(data.groups as string[]);
  }
}

export class KeypairError extends Error {
  override readonly name = 'KeypairError';
}

/**
 * Turns `key=value` items into a settings fragment. Values are typed as upstream does: JSON
 * bool, then unsigned integer, then float, else string; `settings.` in front of a key is optional.
 */
export function keypairsToSettings(items: readonly string[]): JsonObject {
  const document: JsonObject = {};
  for (const item of items) {
    const split = item.indexOf('=');
    if (split < 0) throw new KeypairError(`Failed to split the string: '${item}' has no '='`);
    const segments = parseKey(item.slice(0, split));
    if (segments[0] === 'settings' && segments.length > 1) segments.shift();
    let node = document;
    for (const segment of segments.slice(0, -1)) {
      const child = node[segment];
      if (isJsonObject(child)) {
        node = child;
      } else {
        const created: JsonObject = {};
        node[segment] = created;
        node = created;
      }
    }
    node[segments.at(-1) as string] = typeKeypairValue(item.slice(split + 1));
  }
  return document;
}

function typeKeypairValue(text: string): unknown {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (/^\d+$/.test(text) && BigInt(text) <= 18_446_744_073_709_551_615n) return Number(text);
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity|nan)$/i.test(text)) {
    const parsed = Number(text);
    if (Number.isFinite(parsed)) return parsed;
  }
  return text;
}
