// TOML loading with errors that name the file, line and key, and strict key checking.
import { readFile } from 'node:fs/promises';
import { parse, TomlError } from 'smol-toml';
import { BrlError, ExitCode, fileError } from './errors.ts';

export type TomlTable = Record<string, unknown>;

/** A parsed TOML document plus what error messages need to point at a line. */
export interface TomlDocument {
  path: string;
  text: string;
  data: TomlTable;
}

export function parseToml(path: string, text: string): TomlDocument {
  try {
    return { path, text, data: parse(text) as TomlTable };
  } catch (error) {
    if (error instanceof TomlError) {
      const reason = error.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? 'invalid TOML';
      throw new BrlError(`${path}:${error.line}:${error.column}: ${reason}`, {
        exitCode: ExitCode.badInput,
        code: 'BAD_TOML',
      });
    }
    throw error;
  }
}

export async function loadToml(path: string): Promise<TomlDocument> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw fileError(error, path) ?? error;
  }
  return parseToml(path, text);
}

/** 1-based line on which `key` is assigned (or its table header opens), for error messages. */
export function lineOfKey(text: string, key: string): number | undefined {
  const escaped = key.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
  const pattern = new RegExp(`^\\s*(?:${escaped}\\s*=|\\[\\[?\\s*(?:[\\w.-]+\\.)?${escaped}\\s*\\]\\]?)`);
  const index = text.split('\n').findIndex((line) => pattern.test(line));
  return index < 0 ? undefined : index + 1;
}

/** A BrlError located at `key` in `doc`: "file:line: key: message". */
export function tomlKeyError(doc: TomlDocument, keyPath: string, message: string): BrlError {
  const lastSegment = keyPath.split('.').at(-1) ?? keyPath;
  const line = lineOfKey(doc.text, lastSegment);
  const where = line === undefined ? doc.path : `${doc.path}:${line}`;
  return new BrlError(`${where}: ${keyPath}: ${message}`, { exitCode: ExitCode.badInput, code: 'BAD_CONFIG' });
}

/** Throws on the first key of `table` that is not in `allowed`. */
export function rejectUnknownKeys(doc: TomlDocument, table: TomlTable, allowed: readonly string[], prefix = ''): void {
  for (const key of Object.keys(table)) {
    if (!allowed.includes(key)) {
      throw tomlKeyError(doc, `${prefix}${key}`, `unknown key (expected one of: ${allowed.join(', ')})`);
    }
  }
}

/** Typed field readers that fail with the file, line and key. */
export function readString(doc: TomlDocument, table: TomlTable, key: string, prefix = ''): string | undefined {
  const value = table[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw tomlKeyError(doc, `${prefix}${key}`, `must be a string, got ${describe(value)}`);
  return value;
}

export function readBoolean(doc: TomlDocument, table: TomlTable, key: string, prefix = ''): boolean | undefined {
  const value = table[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw tomlKeyError(doc, `${prefix}${key}`, `must be true or false, got ${describe(value)}`);
  return value;
}

export function readStringArray(doc: TomlDocument, table: TomlTable, key: string, prefix = ''): string[] | undefined {
  const value = table[key];
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) {
    throw tomlKeyError(doc, `${prefix}${key}`, `must be an array of strings, got ${describe(value)}`);
  }
  return value as string[];
}

export function readTable(doc: TomlDocument, table: TomlTable, key: string, prefix = ''): TomlTable | undefined {
  const value = table[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Date) {
    throw tomlKeyError(doc, `${prefix}${key}`, `must be a table, got ${describe(value)}`);
  }
  return value as TomlTable;
}

export function readTableArray(doc: TomlDocument, table: TomlTable, key: string, prefix = ''): TomlTable[] | undefined {
  const value = table[key];
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'object' || item === null || Array.isArray(item))) {
    throw tomlKeyError(doc, `${prefix}${key}`, `must be an array of tables ([[${key}]]), got ${describe(value)}`);
  }
  return value as TomlTable[];
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'a table' : `${typeof value} ${JSON.stringify(value)}`;
}

export function readInteger(doc: TomlDocument, table: TomlTable, key: string, prefix = ''): number | undefined {
  const value = table[key];
  if (value === undefined) return undefined;
  // smol-toml yields integers as numbers (bigint only beyond 2^53).
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    const shown = typeof value === 'bigint' ? value.toString() : JSON.stringify(value);
    throw tomlKeyError(doc, `${prefix}${key}`, `must be an integer, got ${shown}`);
  }
  return value;
}
