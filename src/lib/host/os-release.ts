// os-release as the API reports it: `{pretty_name, variant_id, version_id, build_id, arch}`.
import { readFile } from 'node:fs/promises';
import { errnoCode } from '../core/errors.ts';
import { parseOsRelease } from '../core/os-release.ts';

export class OsReleaseError extends Error {
  override readonly name = 'OsReleaseError';
}

export interface OsInfo {
  pretty_name: string;
  variant_id: string;
  version_id: string;
  build_id: string;
  arch: string;
}

export function hostArch(): string {
  return process.arch === 'arm64' ? 'aarch64' : process.arch === 'x64' ? 'x86_64' : process.arch;
}

/** Reads the first os-release that exists of `paths`. */
export async function readOsInfo(paths: readonly string[]): Promise<OsInfo> {
  for (const path of paths) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') continue;
      throw error;
    }
    const fields = parseOsRelease(text);
    return {
      pretty_name: fields.PRETTY_NAME ?? '',
      variant_id: fields.VARIANT_ID ?? '',
      version_id: fields.VERSION_ID ?? '',
      build_id: fields.BUILD_ID ?? '',
      arch: hostArch(),
    };
  }
  throw new OsReleaseError(`no os-release found at ${paths.join(' or ')}`);
}
