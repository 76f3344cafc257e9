// A package's outputs: `build/rpms/<arch>/<name>/` with its RPMs and the build record, replaced whole.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { buildDir } from '../core/paths.ts';
import { writeJsonAtomic } from '../core/fs.ts';
import type { CacheInputs } from './cache-key.ts';
import type { BuildArch } from './macros.ts';

export const buildRecordName = '.brl-build.json';

export interface BuiltRpm {
  file: string;
  sha256: string;
  size: number;
}

/** Written next to the RPMs; a later build with the same key reuses them. */
export interface BuildRecord {
  key: string;
  inputs: CacheInputs;
  rpms: BuiltRpm[];
  dist: string;
  sourceDateEpoch: number;
  /** Hardening findings an exception allowed, kept so the cache can report them again. */
  allowedHardening: Array<{ path: string; check: string; reason: string }>;
}

export function rpmsDir(projectDir: string, arch: BuildArch, name: string): string {
  return join(buildDir(projectDir), 'rpms', arch, name);
}

export function logPath(projectDir: string, arch: BuildArch, name: string): string {
  return join(buildDir(projectDir), 'logs', arch, `${name}.log`);
}

/** Held while a process checks, builds and publishes the package. */
export function lockPath(projectDir: string, arch: BuildArch, name: string): string {
  return join(buildDir(projectDir), 'locks', arch, `${name}.lock`);
}

export function workRoot(projectDir: string, arch: BuildArch): string {
  return join(buildDir(projectDir), 'work', arch);
}

export async function readBuildRecord(outputDir: string): Promise<BuildRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(outputDir, buildRecordName), 'utf8')) as BuildRecord;
  } catch {
    return undefined;
  }
}

/** True when every RPM the record names is still there with its recorded size. */
export async function outputsIntact(outputDir: string, record: BuildRecord): Promise<boolean> {
  for (const rpm of record.rpms) {
    const stats = await stat(join(outputDir, rpm.file)).catch(() => undefined);
    if (stats === undefined || stats.size !== rpm.size) return false;
  }
  return true;
}

/**
 * Moves `rpmPaths` and the record into a fresh directory beside `outputDir`, then swaps it in:
 * readers see the old set or the new one, never a mix. The RPMs must be on the same filesystem.
 */
export async function replaceOutputs(outputDir: string, rpmPaths: readonly string[], record: BuildRecord): Promise<void> {
  const parent = dirname(outputDir);
  await mkdir(parent, { recursive: true });
  const suffix = randomBytes(6).toString('hex');
  const staging = join(parent, `.${basename(outputDir)}.new-${suffix}`);
  const retired = join(parent, `.${basename(outputDir)}.old-${suffix}`);
  await mkdir(staging);
  try {
    for (const rpm of rpmPaths) await rename(rpm, join(staging, basename(rpm)));
    await writeJsonAtomic(join(staging, buildRecordName), record);
    const hadOutputs = existsSync(outputDir);
    if (hadOutputs) await rename(outputDir, retired);
    await rename(staging, outputDir);
    if (hadOutputs) await rm(retired, { recursive: true, force: true });
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}
