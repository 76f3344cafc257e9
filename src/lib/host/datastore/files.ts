// Bottlerocket's one-file-per-key trees (live/ and pending/<tx>/): paths of keys and metadata, and reading a tree.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../../core/errors.ts';
import { decodeSegment, encodeSegment } from './key.ts';

export interface StoredEntry {
  segments: string[];
  value: unknown;
}

/** Data on disk that is not what the datastore writes (corrupt JSON, missing live tree, a damaged log). */
export class DatastoreIntegrityError extends Error {
  override readonly name = 'DatastoreIntegrityError';
}

export function dataPath(dir: string, segments: readonly string[]): string {
  return join(dir, ...segments.map(encodeSegment));
}

export function metaPath(dir: string, segments: readonly string[], metaName: string): string {
  const parents = segments.slice(0, -1).map(encodeSegment);
  return join(dir, ...parents, `${encodeSegment(segments.at(-1) as string)}.${encodeSegment(metaName)}`);
}

export interface TreeVisitor {
  data: (segments: string[], value: unknown) => void;
  meta: (segments: string[], metaName: string, value: unknown) => void;
}

/** Reads one file per key; names with a literal `.` are metadata (`<segment>.<meta name>`); dot-files are temporaries. */
export async function walkTree(dir: string, segments: string[], visitor: TreeVisitor): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw error;
  }
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    const dot = entry.name.indexOf('.');
    if (entry.isDirectory()) {
      if (dot < 0) await walkTree(path, [...segments, decodeSegment(entry.name)], visitor);
      continue;
    }
    const value = parseStored(path, await readFile(path, 'utf8'));
    if (dot < 0) {
      visitor.data([...segments, decodeSegment(entry.name)], value);
    } else {
      const owner = [...segments, decodeSegment(entry.name.slice(0, dot))];
      visitor.meta(owner, decodeSegment(entry.name.slice(dot + 1)), value);
    }
  }
}

function parseStored(path: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new DatastoreIntegrityError(`Datastore file ${path} does not hold JSON`);
  }
}
