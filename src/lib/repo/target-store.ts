// The shared targets directory: files stored once as `<sha256>.<name>`, written before any metadata.
import { existsSync } from 'node:fs';
import { copyFile, link, mkdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';
import { tempPathFor, writeFileAtomic } from '../core/fs.ts';
import { hashFile } from '../core/hash.ts';
import { consistentTargetPath, targetNameProblem, type TargetFile, type TargetsSigned } from '../tuf/targets.ts';
import { sha256Hex } from '../tuf/verify.ts';

export interface StoredTarget {
  name: string;
  length: number;
  sha256: string;
  /** False when the same bytes were already stored. */
  written: boolean;
}

function checkName(name: string): void {
  const problem = targetNameProblem(name);
  if (problem) {
    throw new BrlError(`target name ${JSON.stringify(name)} ${problem}`, { exitCode: ExitCode.badInput, code: 'BAD_TARGET_NAME' });
  }
}

/** Refuses to change what an existing target name points at. */
export function refuseChangedTarget(targets: TargetsSigned, name: string, sha256: string, length: number, source: string): void {
  const existing = targets.targets[name];
  if (existing && (existing.hashes.sha256 !== sha256 || existing.length !== length)) {
    throw new BrlError(`target ${name} already exists with sha256 ${existing.hashes.sha256}; ${source} has ${sha256}`, {
      hint: 'a published target name never changes content: bump the release version (Release.toml) and rebuild',
      exitCode: ExitCode.conflict,
      code: 'TARGET_CONFLICT',
    });
  }
}

/**
 * Hard-links `sourcePath` into the targets directory (link(2) creates the name atomically, or
 * fails because it exists); across file systems it is copied to a temp name and renamed.
 */
export async function storeTargetFile(targetsDir: string, targets: TargetsSigned, name: string, sourcePath: string): Promise<StoredTarget> {
  checkName(name);
  const { bytes: length, hex: sha256 } = await hashFile(sourcePath);
  refuseChangedTarget(targets, name, sha256, length, sourcePath);
  const destination = join(targetsDir, consistentTargetPath(name, sha256));
  let written = true;
  try {
    // link(2) does not follow symlinks, and build outputs are often reached through them.
    await link(await realpath(sourcePath), destination);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' && name.includes('/')) {
      await mkdir(dirname(destination), { recursive: true });
      return storeTargetFile(targetsDir, targets, name, sourcePath);
    }
    if (code === 'EEXIST' && (await stat(destination)).size === length) {
      written = false;
    } else if (code === 'EEXIST' || code === 'EXDEV' || code === 'EPERM') {
      // A different size under a content-addressed name is a damaged copy: replace it.
      const temp = tempPathFor(destination);
      await copyFile(sourcePath, temp);
      await rename(temp, destination).catch(async (renameError: unknown) => {
        await rm(temp, { force: true });
        throw renameError;
      });
    } else {
      throw error;
    }
  }
  targets.targets[name] ??= targetEntry(length, sha256);
  return { name, length, sha256, written };
}

export async function storeTargetBytes(targetsDir: string, targets: TargetsSigned, name: string, bytes: Uint8Array, source: string): Promise<StoredTarget> {
  checkName(name);
  const sha256 = sha256Hex(bytes);
  refuseChangedTarget(targets, name, sha256, bytes.length, source);
  const destination = join(targetsDir, consistentTargetPath(name, sha256));
  const written = !(await sameSize(destination, bytes.length));
  if (written) await writeFileAtomic(destination, bytes);
  targets.targets[name] ??= targetEntry(bytes.length, sha256);
  return { name, length: bytes.length, sha256, written };
}

function targetEntry(length: number, sha256: string): TargetFile {
  return { length, hashes: { sha256 } };
}

async function sameSize(path: string, length: number): Promise<boolean> {
  if (!existsSync(path)) return false;
  return (await stat(path)).size === length;
}
