// manifest.json files edited in place (Bottlerocket's `updata`), always validated before writing.
import { existsSync } from 'node:fs';
import { BrlError, ExitCode } from '../core/errors.ts';
import { readUserText, writeFileAtomic } from '../core/fs.ts';
import { emptyManifest, parseManifest, serializeManifest, validateManifest, type Manifest } from '../update-metadata/index.ts';

export async function readManifestFile(path: string, options: { createIfMissing?: boolean } = {}): Promise<Manifest> {
  if (!existsSync(path)) {
    if (options.createIfMissing) return emptyManifest();
    throw new BrlError(`${path} does not exist`, {
      hint: 'create it with brl repo manifest add-update (which starts an empty manifest), or check the path',
      exitCode: ExitCode.notFound,
      code: 'FILE_NOT_FOUND',
    });
  }
  const manifest = parseManifest(await readUserText(path), path);
  validateManifest(manifest, path);
  return manifest;
}

export async function editManifestFile(path: string, edit: (manifest: Manifest) => Manifest, options: { createIfMissing?: boolean } = {}): Promise<Manifest> {
  const edited = edit(await readManifestFile(path, options));
  validateManifest(edited, path);
  await writeFileAtomic(path, serializeManifest(edited));
  return edited;
}
