// File writes that never leave a half-written file at a final path.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { BrlError, ExitCode, errnoCode, fileError } from './errors.ts';

/** Reads a file the user named; a missing file, a directory or no permission fail with its path. */
export async function readUserFile(path: string, options: { what?: string; hint?: string } = {}): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw fileError(error, path, options) ?? error;
  }
}

export async function readUserText(path: string, options: { what?: string; hint?: string } = {}): Promise<string> {
  return (await readUserFile(path, options)).toString('utf8');
}

/** A sibling temp path in the same directory, so the final rename is atomic. */
export function tempPathFor(finalPath: string): string {
  return join(dirname(finalPath), `.${basename(finalPath)}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * A BrlError for a failed write of a path the user chose, or undefined for anything else (a bug).
 * `mkdir -p` reports a file in the way as EEXIST, and a final path that is a directory shows up as
 * EISDIR or ENOTDIR from rename; both read as errno noise unless named.
 */
export function writeError(error: unknown, path: string): BrlError | undefined {
  const code = errnoCode(error);
  if (code === 'EEXIST' || code === 'ENOTDIR') {
    return new BrlError(`cannot write ${path}: part of its directory path is a file, not a directory`, {
      exitCode: ExitCode.badInput,
      code: 'NOT_A_DIRECTORY',
      hint: 'choose a path whose parent directories are directories',
      cause: error,
    });
  }
  if (code === 'EISDIR') {
    return new BrlError(`cannot write ${path}: it is a directory`, {
      exitCode: ExitCode.badInput,
      code: 'IS_A_DIRECTORY',
      hint: 'name a file, not a directory',
      cause: error,
    });
  }
  return fileError(error, path);
}

/** `mkdir -p` of a directory the user chose, failing with a message that names it. */
export async function makeDir(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
  } catch (error) {
    throw writeError(error, path) ?? error;
  }
}

/** `mkdir -p` of a file's parent directory, failing with a message that names the file. */
export async function makeParentDir(path: string): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true });
  } catch (error) {
    throw writeError(error, path) ?? error;
  }
}

/** Flushes a directory's entries (a rename or a new file in it) to disk. */
export async function fsyncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `data` to a temp file, fsyncs it, renames it over `finalPath` and fsyncs the directory. */
export async function writeFileAtomic(
  finalPath: string,
  data: string | Uint8Array,
  options: { mode?: number } = {},
): Promise<void> {
  if (finalPath.endsWith('/')) {
    throw new BrlError(`cannot write ${finalPath}: a path ending in / names a directory`, { exitCode: ExitCode.badInput, code: 'IS_A_DIRECTORY', hint: 'give a file name' });
  }
  await makeParentDir(finalPath);
  const tempPath = tempPathFor(finalPath);
  let handle;
  try {
    handle = await open(tempPath, 'wx', options.mode ?? 0o644);
  } catch (error) {
    throw writeError(error, finalPath) ?? error;
  }
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(tempPath, { force: true });
    throw writeError(error, finalPath) ?? error;
  }
  await handle.close();
  try {
    await rename(tempPath, finalPath);
  } catch (error) {
    await rm(tempPath, { force: true });
    throw writeError(error, finalPath) ?? error;
  }
  await fsyncDirectory(dirname(finalPath));
}

export async function writeJsonAtomic(finalPath: string, value: unknown): Promise<void> {
  await writeFileAtomic(finalPath, `${JSON.stringify(value, null, 2)}\n`);
}
