// brl.toml: one file with a section per part of brl; a misspelled section is an error, not ignored.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadToml, rejectUnknownKeys, type TomlDocument } from './toml.ts';

export const projectConfigFileName = 'brl.toml';
export const projectConfigSections = ['fetch', 'build', 'secure-boot'] as const;

/** The project's brl.toml with its sections checked, or undefined when the project has none. */
export async function loadProjectConfig(projectDir: string): Promise<TomlDocument | undefined> {
  const path = join(projectDir, projectConfigFileName);
  if (!existsSync(path)) return undefined;
  const doc = await loadToml(path);
  rejectUnknownKeys(doc, doc.data, projectConfigSections);
  return doc;
}
