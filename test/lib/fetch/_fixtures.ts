// Shared fixtures for fetch tests: temp dirs, pinned files and in-memory package definitions.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FetchConfig } from '../../../src/lib/fetch/index.ts';
import type { ExternalFile, PackageDefinition } from '../../../src/lib/packages/manifest.ts';

export const fastNetwork = { attempts: 4, initialBackoffMs: 10, timeoutMs: 2_000 };

export function sha512(data: Buffer | string): string {
  return createHash('sha512').update(data).digest('hex');
}

export function tempDir(prefix = 'brl-fetch-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Random content (incompressible, so no transfer shortcut hides a fault). */
export function content(bytes: number): Buffer {
  return randomBytes(bytes);
}

export function externalFile(url: string, body: Buffer, options: Partial<ExternalFile> = {}): ExternalFile {
  const kind = url.startsWith('npm:') ? 'npm' : url.startsWith('deb:') ? 'deb' : 'url';
  const fileName = options.fileName ?? (kind === 'url' ? decodeURIComponent(new URL(url).pathname.split('/').at(-1) ?? '') : 'file');
  return { url, kind, sha512: sha512(body), fileName, forceUpstream: false, ...options };
}

export function packageWith(name: string, externalFiles: ExternalFile[]): PackageDefinition {
  const dir = `/nonexistent/packages-specs/${name}`;
  return {
    name,
    dir,
    specPath: `${dir}/${name}.spec`,
    manifestPath: `${dir}/package.toml`,
    externalFiles,
    buildDependencies: [],
    hardeningExceptions: [],
  };
}

export function config(cacheDir: string, overrides: Partial<FetchConfig> = {}): FetchConfig {
  return { cacheDir, lookasideCaches: [], upstreamFallback: true, jobs: 4, ...overrides };
}

/** Every file under `dir`, relative, so a test can prove no temp or partial file was left. */
export async function filesUnder(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
      .sort();
  } catch {
    return [];
  }
}
