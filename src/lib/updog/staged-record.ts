// Which release updog last wrote into the inactive set, kept on the data partition so that a host
// that fell back from it can say which update failed to boot (GPT flags alone only say that one did).
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../core/errors.ts';
import { makeParentDir, writeFileAtomic } from '../core/fs.ts';
import type { Bank } from '../image/banks.ts';

export interface StagedImage {
  arch: string;
  version: string;
  variant: string;
}

export interface StagedRecord {
  set: Bank;
  /** PARTUUID of the set's BOOT partition: a record of another disk never matches. */
  bootPartUuid: string;
  image: StagedImage;
}

export function stagedRecordPath(root: string): string {
  return join(root, 'var', 'lib', 'updog', 'staged-set.json');
}

export async function writeStagedRecord(root: string, record: StagedRecord): Promise<void> {
  const path = stagedRecordPath(root);
  await makeParentDir(path);
  await writeFileAtomic(path, `${JSON.stringify(record)}\n`);
}

/** Removed before the inactive set is cleared, so a record never names what the set no longer holds. */
export async function removeStagedRecord(root: string): Promise<void> {
  await rm(stagedRecordPath(root), { force: true });
}

/** The record, or undefined when there is none or it cannot be read (it only adds a version to a report). */
export async function readStagedRecord(root: string): Promise<StagedRecord | undefined> {
  try {
    const parsed = JSON.parse(await readFile(stagedRecordPath(root), 'utf8')) as Partial<StagedRecord>;
    const image = parsed.image as Partial<StagedImage> | undefined;
    if ((parsed.set !== 'A' && parsed.set !== 'B') || typeof parsed.bootPartUuid !== 'string'
      || typeof image?.version !== 'string' || typeof image.variant !== 'string' || typeof image.arch !== 'string') return undefined;
    return { set: parsed.set, bootPartUuid: parsed.bootPartUuid, image: { arch: image.arch, version: image.version, variant: image.variant } };
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || error instanceof SyntaxError) return undefined;
    throw error;
  }
}
