// Finds a variant build's update images and extra targets in build/images/<arch>-<variant>/latest/.
import { existsSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';

export interface BuildImages {
  dir: string;
  /** `<name>-<variant>-<arch>-<version>-<build>`. */
  prefix: string;
  version: string;
  boot: string;
  root: string;
  hash: string;
  /** `<prefix>-migrations.tar` when the build made one. */
  migrationsTar?: string;
  /** Disk images and the kmod kit, published as targets under their file names (pubsys link targets). */
  linkTargets: string[];
}

export function defaultImagesDir(buildDir: string, variant: string, arch: string): string {
  return join(buildDir, 'images', `${arch}-${variant}`, 'latest');
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The real (not symlinked) `P-boot.ext4.lz4` names the build; its siblings must exist. When
 * `version` is given, only that version's images are accepted.
 */
export async function findBuildImages(dir: string, variant: string, arch: string, version?: string): Promise<BuildImages> {
  if (!existsSync(dir)) {
    throw new BrlError(`no variant images in ${dir}`, {
      hint: `build them first with brl build variant ${variant} --arch ${arch}, or pass --images-dir`,
      exitCode: ExitCode.notFound,
      code: 'NO_IMAGES',
    });
  }
  const pattern = new RegExp(`^((.+)-${escape(variant)}-${escape(arch)}-(\\d+\\.\\d+\\.\\d+)-[0-9a-z]+(?:-dirty)?)-boot\\.ext4\\.lz4$`);
  const names = await readdir(dir);
  const candidates: { prefix: string; osName: string; version: string }[] = [];
  for (const name of names) {
    const match = pattern.exec(name);
    if (!match || (await lstat(join(dir, name))).isSymbolicLink()) continue;
    if (version === undefined || match[3] === version) candidates.push({ prefix: match[1]!, osName: match[2]!, version: match[3]! });
  }
  if (candidates.length !== 1) {
    throw new BrlError(candidates.length === 0
      ? `${dir} has no <name>-${variant}-${arch}-${version ?? '<version>'}-<build>-boot.ext4.lz4`
      : `${dir} holds images of several builds: ${candidates.map((candidate) => candidate.prefix).join(', ')}`, {
      hint: 'point --images-dir at one build\'s output directory, or pass --version',
      exitCode: candidates.length === 0 ? ExitCode.notFound : ExitCode.usage,
      code: 'NO_IMAGES',
    });
  }
  const { prefix, osName, version: found } = candidates[0]!;
  const required = (suffix: string) => {
    const path = join(dir, `${prefix}${suffix}`);
    if (!existsSync(path)) {
      throw new BrlError(`${path} is missing`, { hint: 'rebuild the variant; the update images come in threes', exitCode: ExitCode.notFound, code: 'NO_IMAGES' });
    }
    return path;
  };
  const optional = [
    `${prefix}.img.lz4`,
    `${prefix}-data.img.lz4`,
    `${prefix}.ova`,
    `${osName}-${variant}-${arch}-v${found}.img.lz4`,
    `${osName}-${variant}-${arch}-v${found}-data.img.lz4`,
    `${variant}-${arch}-kmod-kit-v${found}.tar.xz`,
  ];
  const migrationsTar = join(dir, `${prefix}-migrations.tar`);
  return {
    dir,
    prefix,
    version: found,
    boot: required('-boot.ext4.lz4'),
    root: required('-root.ext4.lz4'),
    hash: required('-root.verity.lz4'),
    ...(existsSync(migrationsTar) ? { migrationsTar } : {}),
    linkTargets: optional.map((name) => join(dir, name)).filter((path) => existsSync(path)),
  };
}
