// Where a repository's files live: one shared targets directory, metadata per variant and arch.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { RoleName } from '../tuf/metadata.ts';

export interface RepoLayout {
  outdir: string;
  targetsDir: string;
  metadataDir: string;
}

export function repoLayout(outdir: string, variant: string, arch: string): RepoLayout {
  return { outdir, targetsDir: join(outdir, 'targets'), metadataDir: join(outdir, variant, arch) };
}

/** `N.root.json`, `<v>.<role>.json` with consistent snapshots, and the unversioned `timestamp.json`. */
export function metadataFileName(role: RoleName, version: number, consistentSnapshot: boolean): string {
  if (role === 'timestamp') return 'timestamp.json';
  if (role === 'root' || consistentSnapshot) return `${version}.${role}.json`;
  return `${role}.json`;
}

/** Every `<variant>/<arch>` under `outdir` that holds a timestamp.json, sorted. */
export async function findMetadataDirs(outdir: string): Promise<{ variant: string; arch: string }[]> {
  const found: { variant: string; arch: string }[] = [];
  const entries = await readdir(outdir, { withFileTypes: true }).catch(() => []);
  for (const variant of entries) {
    if (!variant.isDirectory() || variant.name === 'targets') continue;
    for (const arch of await readdir(join(outdir, variant.name), { withFileTypes: true })) {
      if (arch.isDirectory() && existsSync(join(outdir, variant.name, arch.name, 'timestamp.json'))) found.push({ variant: variant.name, arch: arch.name });
    }
  }
  return found.sort((a, b) => `${a.variant}/${a.arch}`.localeCompare(`${b.variant}/${b.arch}`));
}
