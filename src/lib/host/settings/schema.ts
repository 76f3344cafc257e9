// Declarative setting types and the checker that applies them to a settings document.
import { isIP } from 'node:net';
import { isJsonObject } from '../datastore/tree.ts';

export type Schema =
  | { kind: 'string'; pattern?: RegExp; patternText?: string; maxLength?: number; singleLine?: boolean }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'bool' }
  | { kind: 'integer'; min: number; max: number; typeName: string }
  | { kind: 'url' }
  | { kind: 'hostname' }
  | { kind: 'ip' }
  | { kind: 'base64' }
  | { kind: 'version-lock' }
  | { kind: 'list'; items: Schema }
  | { kind: 'one-of'; options: readonly Schema[]; describe: string }
  | { kind: 'tuple'; items: readonly Schema[] }
  | { kind: 'struct'; fields: Readonly<Record<string, Schema>>; required?: readonly string[] }
  | { kind: 'map'; keyPattern: RegExp; keyDescribe: string; values: Schema };

/** A value that does not fit the model; `key` is the full dotted key name. */
export class SettingsValidationError extends Error {
  override readonly name = 'SettingsValidationError';
  readonly key: string;
  readonly reason: string;

  constructor(key: string, reason: string) {
    super(`Invalid setting '${key}': ${reason}`);
    this.key = key;
    this.reason = reason;
  }
}

export interface CheckOptions {
  /** PATCH bodies may hold `null` (remove this key); committed documents may not. */
  allowNull: boolean;
}

/** Throws `SettingsValidationError` naming the first offending key. */
export function checkValue(schema: Schema, value: unknown, key: string, options: CheckOptions): void {
  if (value === null) {
    if (options.allowNull) return;
    throw new SettingsValidationError(key, 'null is not a value (null in a PATCH removes a setting)');
  }
  const fail = (reason: string): never => {
    throw new SettingsValidationError(key, reason);
  };
  switch (schema.kind) {
    case 'string': {
      if (typeof value !== 'string') return fail(`expected a string, got ${describe(value)}`);
      if (schema.maxLength !== undefined && value.length > schema.maxLength) {
        fail(`must be at most ${schema.maxLength} characters`);
      }
      if (schema.singleLine && /[\n\r\v\f\u0085\u2028\u2029]/.test(value)) fail('must be a single line');
      if (schema.pattern && !schema.pattern.test(value)) {
        fail(`'${value}' does not match ${schema.patternText ?? schema.pattern.source}`);
      }
      return;
    }
    case 'enum':
      if (typeof value !== 'string' || !schema.values.includes(value)) {
        fail(`expected one of ${schema.values.map((item) => `'${item}'`).join(', ')}, got ${describe(value)}`);
      }
      return;
    case 'bool':
      if (typeof value !== 'boolean') fail(`expected true or false, got ${describe(value)}`);
      return;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < schema.min || value > schema.max) {
        fail(`expected ${schema.typeName} (${schema.min}..${schema.max}), got ${describe(value)}`);
      }
      return;
    case 'url':
      if (typeof value !== 'string') return fail(`expected a URL string, got ${describe(value)}`);
      if (!isUrl(value)) fail(`'${value}' is not a valid URL`);
      return;
    case 'hostname':
      if (typeof value !== 'string') return fail(`expected a hostname string, got ${describe(value)}`);
      if (!isHostname(value)) {
        fail(`'${value}' is not a valid hostname (lowercase letters, digits, '-' and '.', labels of 1-63 characters)`);
      }
      return;
    case 'ip':
      if (typeof value !== 'string' || isIP(value) === 0) fail(`expected an IP address, got ${describe(value)}`);
      return;
    case 'base64':
      if (typeof value !== 'string') return fail(`expected a base64 string, got ${describe(value)}`);
      if (value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) fail('is not valid standard base64');
      return;
    case 'version-lock':
      if (typeof value !== 'string') return fail(`expected 'latest' or a version, got ${describe(value)}`);
      if (value !== 'latest' && !/^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/.test(value)) {
        fail(`'${value}' is neither 'latest' nor a semantic version`);
      }
      return;
    case 'list':
      if (!Array.isArray(value)) return fail(`expected a list, got ${describe(value)}`);
      value.forEach((item, index) => checkValue(schema.items, item, `${key}[${index}]`, { allowNull: false }));
      return;
    case 'one-of':
      for (const option of schema.options) {
        try {
          checkValue(option, value, key, options);
          return;
        } catch (error) {
          if (!(error instanceof SettingsValidationError)) throw error;
        }
      }
      return fail(`expected ${schema.describe}, got ${describe(value)}`);
    case 'tuple':
      if (!Array.isArray(value) || value.length !== schema.items.length) {
        return fail(`expected a list of ${schema.items.length} items, got ${describe(value)}`);
      }
      schema.items.forEach((item, index) => checkValue(item, value[index], `${key}[${index}]`, { allowNull: false }));
      return;
    case 'struct': {
      if (!isJsonObject(value)) return fail(`expected a table of settings, got ${describe(value)}`);
      for (const [field, child] of Object.entries(value)) {
        const fieldSchema = schema.fields[field];
        if (!fieldSchema) {
          throw new SettingsValidationError(
            joinKey(key, field),
            `unknown setting (expected one of: ${Object.keys(schema.fields).join(', ')})`,
          );
        }
        checkValue(fieldSchema, child, joinKey(key, field), options);
      }
      // Only for tables that are always written whole (list items): a PATCH replaces a list.
      const missing = (schema.required ?? []).filter((field) => value[field] === undefined);
      if (missing.length > 0) fail(`missing ${missing.map((field) => `'${field}'`).join(' and ')}`);
      return;
    }
    case 'map': {
      if (!isJsonObject(value)) return fail(`expected a table, got ${describe(value)}`);
      for (const [field, child] of Object.entries(value)) {
        if (!schema.keyPattern.test(field)) {
          throw new SettingsValidationError(joinKey(key, field), `'${field}' is not ${schema.keyDescribe}`);
        }
        checkValue(schema.values, child, joinKey(key, field), options);
      }
      return;
    }
  }
}

function joinKey(key: string, field: string): string {
  return `${key}.${field.includes('.') ? `"${field}"` : field}`;
}

/** Upstream's Url type: parses as a URL, or does once `http://` is put in front. */
export function isUrl(text: string): boolean {
  if (text.length === 0 || /\s/.test(text)) return false;
  return URL.canParse(text) || URL.canParse(`http://${text}`);
}

export function isHostname(text: string): boolean {
  if (!/^[0-9a-z.-]{1,253}$/.test(text) || text.startsWith('-') || text.startsWith('.')) return false;
  return text.split('.').every((label, index, labels) => {
    if (label.length === 0) return index === labels.length - 1 && index > 0;
    return label.length <= 63 && !label.startsWith('-');
  });
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a table';
  return `${typeof value === 'number' ? 'number' : typeof value} ${JSON.stringify(value)}`;
}
