// Where a pinned external file lives in a content-addressed lookaside cache, locally and on a mirror.
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import type { ExternalFile } from '../packages/manifest.ts';

export type PinnedFile = Pick<ExternalFile, 'fileName' | 'sha512'>;

/** `<cacheDir>/<fileName>/<sha512>/<fileName>`: the same layout a Bottlerocket lookaside cache serves. */
export function lookasidePath(cacheDir: string, file: PinnedFile): string {
  assertPinned(file);
  return join(cacheDir, file.fileName, file.sha512, file.fileName);
}

/** `<base>/<fileName>/<sha512>/<fileName>` on a lookaside cache (mirror) base URL. */
export function lookasideUrl(baseUrl: string, file: PinnedFile): string {
  assertPinned(file);
  const name = encodeURIComponent(file.fileName);
  return `${baseUrl.replace(/\/+$/, '')}/${name}/${file.sha512}/${name}`;
}

// manifest.ts already refuses these; checked again because callers may build a PinnedFile themselves.
function assertPinned(file: PinnedFile): void {
  const name = file.fileName;
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\\') || name.includes('\0')) {
    throw new BrlError(`external file name "${name}" must be a single file name inside the package directory`, {
      exitCode: ExitCode.badInput,
      code: 'BAD_EXTERNAL_FILE_PATH',
    });
  }
  if (!/^[0-9a-f]{128}$/.test(file.sha512)) {
    throw new BrlError(`external file "${name}": sha512 "${file.sha512}" must be 128 lowercase hex digits`, {
      exitCode: ExitCode.badInput,
      code: 'BAD_SHA512',
    });
  }
}
