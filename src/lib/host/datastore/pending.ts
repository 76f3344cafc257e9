// Pending transactions: changes PATCHed but not yet committed, in memory and in Bottlerocket's pending/<tx>/ trees.
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isSegmentPrefix, keyName } from './key.ts';
import { dataPath, type StoredEntry, walkTree } from './files.ts';
import { randomAlnum } from './layout.ts';
import type { FlatEntry } from './tree.ts';

/** Suffix of the pending tombstone file that asks a commit to remove a key and everything below it. */
export const DELETE_MARKER = 'brl-delete';

/** A transaction's pending changes: values to write and key paths to remove first. */
export interface PendingTx {
  values: Map<string, StoredEntry>;
  removals: Map<string, string[]>;
}

export function emptyPending(): PendingTx {
  return { values: new Map(), removals: new Map() };
}

/**
 * Adds PATCHed entries to a transaction, as the files in pending/<tx>/ would hold them: a `null`
 * drops what the transaction holds at and below that key and leaves a tombstone, so the commit removes
 * the committed ones; a value set later in the same transaction is kept and written after the removal.
 */
export function addToPending(pending: PendingTx, entries: readonly FlatEntry[]): void {
  for (const entry of entries) {
    if (entry.value === null) {
      for (const [name, stored] of pending.values) {
        if (isSegmentPrefix(entry.segments, stored.segments)) pending.values.delete(name);
      }
      for (const [name, segments] of pending.removals) {
        if (isSegmentPrefix(entry.segments, segments)) pending.removals.delete(name);
      }
      pending.removals.set(entry.name, entry.segments);
    } else {
      pending.values.set(entry.name, { segments: entry.segments, value: entry.value });
    }
  }
}

/** Every key name a transaction touches, removals first. */
export function pendingKeyNames(pending: PendingTx): string[] {
  return [...pending.removals.keys(), ...pending.values.keys()];
}

/** Reads `pending/<tx>/`: one JSON file per value, `<key>.brl-delete` tombstones; other metadata is ignored. */
export async function readPendingFiles(dir: string): Promise<PendingTx> {
  const pending = emptyPending();
  await walkTree(dir, [], {
    data: (segments, value) => pending.values.set(keyName(segments), { segments, value }),
    meta: (segments, metaName) => {
      if (metaName === DELETE_MARKER) pending.removals.set(keyName(segments), segments);
    },
  });
  return pending;
}

/**
 * Writes PATCHed entries into `pending/<tx>/` for a process that runs before the apiserver
 * (storewolf's launch transaction). Pending data is wiped at every boot, so files are replaced
 * atomically (rename) but not fsynced.
 */
export async function writePendingFiles(dir: string, entries: readonly FlatEntry[]): Promise<void> {
  for (const entry of entries) {
    const path = dataPath(dir, entry.segments);
    if (entry.value === null) {
      await rm(path, { recursive: true, force: true });
      await writeQuick(`${path}.${DELETE_MARKER}`, 'null');
    } else {
      await writeQuick(path, JSON.stringify(entry.value));
    }
  }
}

async function writeQuick(path: string, text: string): Promise<void> {
  const dir = join(path, '..');
  await mkdir(dir, { recursive: true });
  const temp = join(dir, `.${randomAlnum(10)}.tmp`);
  await writeFile(temp, text);
  await rename(temp, path);
}
