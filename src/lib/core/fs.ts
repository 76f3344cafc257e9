// File writes that never leave a half-written file at a final path.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A sibling temp path in the same directory, so the final rename is atomic. */
export function tempPathFor(finalPath: string): string {
  return join(dirname(finalPath), `.${basename(finalPath)}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Writes `data` to a temp file, fsyncs it, then renames it over `finalPath`. */
export async function writeFileAtomic(
  finalPath: string,
  data: string | Uint8Array,
  options: { mode?: number } = {},
): Promise<void> {
  await mkdir(dirname(finalPath), { recursive: true });
  const tempPath = tempPathFor(finalPath);
  const handle = await open(tempPath, 'wx', options.mode ?? 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(tempPath, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(tempPath, finalPath);
  } catch (error) {
    await rm(tempPath, { force: true });
    throw error;
  }
}

export async function writeJsonAtomic(finalPath: string, value: unknown): Promise<void> {
  await writeFileAtomic(finalPath, `${JSON.stringify(value, null, 2)}\n`);
}
