// Lays a variant's host API files into a root: os-release, merged defaults, settings model, templates.
import { copyFile, mkdir, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { stringify } from 'smol-toml';
import { brlInstallDir } from '../../core/paths.ts';
import { BrlError, ExitCode, errnoCode } from '../../core/errors.ts';
import { writeFileAtomic } from '../../core/fs.ts';
import { parseVersion } from '../datastore/layout.ts';
import { MODEL_PATH, SettingsModel } from '../settings/model.ts';
import { loadFragment, mergeFragments } from '../settings/defaults.ts';

/** brl's own defaults: `<variant>/defaults.d/*.toml`, `<variant>/model.toml`, and shared `templates/`. */
export const BUILTIN_DEFAULTS_DIR = join(brlInstallDir, 'src', 'lib', 'host', 'defaults');

export interface PrepareRootOptions {
  root: string;
  variant: string;
  version: string;
  buildId?: string;
  /** Holds `<variant>/defaults.d/`, `<variant>/model.toml` and `templates/`; brl's own by default. */
  defaultsDir?: string;
  /** False when the image build writes os-release itself (default true, for dev roots). */
  writeOsRelease?: boolean;
}

export interface PrepareRootResult {
  root: string;
  defaultsFile: string;
  fragments: string[];
  groups: readonly string[];
  templates: string[];
}

/**
 * What the variant's settings-defaults and settings-model packages install: defaults merged in
 * file-name order to `usr/share/storewolf/<variant>.toml` (linked from `etc/storewolf/defaults.toml`),
 * the model to `usr/share/brl/settings-model.toml`, templates to `usr/share/templates/`, and an
 * os-release naming the variant and version.
 */
export async function prepareRoot(options: PrepareRootOptions): Promise<PrepareRootResult> {
  parseVersion(options.version);
  const root = resolve(options.root);
  const source = options.defaultsDir ?? BUILTIN_DEFAULTS_DIR;
  const variantDir = join(source, options.variant);
  let fragmentNames: string[];
  try {
    fragmentNames = (await readdir(join(variantDir, 'defaults.d'))).filter((name) => name.endsWith('.toml')).sort();
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
    throw new BrlError(`no settings defaults for variant '${options.variant}' in ${variantDir}/defaults.d`, {
      hint: `variants with defaults: ${(await readdir(source).catch(() => [])).filter((name) => !['shared', 'templates'].includes(name)).join(', ')}`,
      exitCode: ExitCode.notFound,
      code: 'NO_VARIANT_DEFAULTS',
    });
  }
  const fragments = await Promise.all(fragmentNames.map((name) => loadFragment(join(variantDir, 'defaults.d', name))));
  const merged = mergeFragments(fragments);
  const modelText = await readFile(join(variantDir, 'model.toml'), 'utf8');
  const groups = SettingsModel.parse(modelText, join(variantDir, 'model.toml')).groups;

  const defaultsFile = join(root, 'usr/share/storewolf', `${options.variant}.toml`);
  await writeFileAtomic(defaultsFile, stringify(merged));
  const link = join(root, 'etc/storewolf/defaults.toml');
  await mkdir(join(root, 'etc/storewolf'), { recursive: true });
  await rm(link, { force: true });
  await symlink(`../../usr/share/storewolf/${options.variant}.toml`, link);
  await writeFileAtomic(join(root, MODEL_PATH), modelText);

  const templatesDir = join(root, 'usr/share/templates');
  await mkdir(templatesDir, { recursive: true });
  const templates = (await readdir(join(source, 'templates'))).sort();
  for (const name of templates) await copyFile(join(source, 'templates', name), join(templatesDir, name));

  if (options.writeOsRelease === false) return { root, defaultsFile, fragments: fragmentNames, groups, templates };
  const prettyName = `Bottlerocket OS ${options.version} (${options.variant})`;
  await writeFileAtomic(
    join(root, 'usr/lib/os-release'),
    [
      'NAME=Bottlerocket',
      'ID=bottlerocket',
      `VERSION="${options.version} (${options.variant})"`,
      `PRETTY_NAME="${prettyName}"`,
      `VARIANT_ID=${options.variant}`,
      `VERSION_ID=${options.version}`,
      `BUILD_ID=${options.buildId ?? 'dev'}`,
      '',
    ].join('\n'),
  );
  return { root, defaultsFile, fragments: fragmentNames, groups, templates };
}
