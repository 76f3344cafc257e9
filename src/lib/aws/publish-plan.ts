// What `brl ami publish` will upload and register: images, AMI name, volume sizes and output file.
import { existsSync } from 'node:fs';
import { lstat, rename, rm, symlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { readBuildManifest } from '../variant/build-manifest.ts';
import { loadVariant } from '../variant/definition.ts';
import { diskImageFile, locateVariantImages, type DiskImageFile } from './images.ts';
import { loadAmiSpec, publishSizes, type AmiSpec, type PublishSizes } from './register.ts';

export interface AmiPublishPlan {
  name: string;
  osImage: DiskImageFile;
  dataImage: DiskImageFile | undefined;
  sizes: PublishSizes;
  /** The boot path is signed: build-manifest.json's bootSigning, else (images given by path) the variant's uefi-secure-boot. */
  uefiSecureBoot: boolean;
  /** From build-manifest.json: the db certificate the boot path was signed for, and the build's SOURCE_DATE_EPOCH. */
  build: { dbCertificateSha256: string | undefined; sourceDateEpoch: number } | undefined;
  amiSpec: AmiSpec;
  amisPath: string;
  /** `<name>-<variant>-<arch>-amis.json` beside amis.json, pointing at it (make's NAME_VARIANT link). */
  amisLinkPath: string | undefined;
  /** Version and build of the images, e.g. `1.0.0-abcdef12`. */
  imageVersion: string | undefined;
}

export interface AmiPublishRequest {
  projectDir: string;
  variant: string;
  arch: string;
  name?: string;
  osImagePath?: string;
  dataImagePath?: string;
  amiOutput?: string;
}

export async function planAmiPublish(request: AmiPublishRequest): Promise<AmiPublishPlan> {
  const variant = await loadVariant(request.projectDir, request.variant);
  const sizes = publishSizes(variant.layout);
  const split = variant.layout.partitionPlan === 'split';
  const explicit = request.osImagePath !== undefined;
  const built = explicit ? undefined : await locateVariantImages(request.projectDir, request.arch, request.variant);

  const osImage = built?.os ?? (await diskImageFile(resolve(request.osImagePath as string)));
  let dataImage = split ? built?.data : undefined;
  if (split && request.dataImagePath !== undefined) dataImage = await diskImageFile(resolve(request.dataImagePath));
  if (split && dataImage === undefined) {
    throw new BrlError(`variant ${request.variant} uses the split partition plan, but there is no data image`, {
      hint: explicit ? 'pass --data-image too' : `rebuild the variant; ${built?.dir} should hold *-data.img.lz4`,
      exitCode: ExitCode.notFound,
      code: 'NO_DATA_IMAGE',
    });
  }
  // pubsys' default name: <name>-<variant>-<arch>-v<version>-<build>, where P = <name>-<variant>-<arch>-<version>-<build>.
  let name = request.name;
  if (name === undefined && built) {
    const product = built.prefix.slice(0, -`-${request.variant}-${request.arch}-${built.version}-${built.buildId}`.length);
    name = `${product}-${request.variant}-${request.arch}-v${built.version}-${built.buildId}`;
  }
  if (name === undefined) {
    throw new BrlError('--name is required with --os-image', { exitCode: ExitCode.usage, code: 'NO_AMI_NAME' });
  }
  if (!/^[A-Za-z0-9()[\]./\-'@_ ]{3,128}$/.test(name)) {
    throw new BrlError(`"${name}" is not a valid AMI name`, {
      hint: '3 to 128 letters, digits and ( ) [ ] space . / - \' @ _',
      exitCode: ExitCode.usage,
      code: 'BAD_AMI_NAME',
    });
  }

  const manifest = built === undefined ? undefined : await readBuildManifest(built.dir);
  const amisPath = request.amiOutput !== undefined ? resolve(request.amiOutput) : built ? join(built.dir, `${built.prefix}-amis.json`) : resolve(`${name}-amis.json`);
  const amisLinkPath = request.amiOutput === undefined && built ? join(built.dir, `${built.prefix.slice(0, -`-${built.version}-${built.buildId}`.length)}-amis.json`) : undefined;
  return {
    name,
    osImage,
    dataImage,
    sizes,
    uefiSecureBoot: manifest?.bootSigning?.signed ?? variant.features['uefi-secure-boot'],
    build: manifest === undefined ? undefined : { dbCertificateSha256: manifest.bootSigning?.dbCertificateSha256, sourceDateEpoch: manifest.sourceDateEpoch },
    amiSpec: await loadAmiSpec(variant.dir),
    amisPath,
    amisLinkPath,
    imageVersion: built ? `${built.version}-${built.buildId}` : undefined,
  };
}

/** The build's manifest beside its images; builds from before manifests have none. */
/** Points `linkPath` at `targetPath` (a relative link in the same directory), replacing an older link. */
export async function linkAmisFile(linkPath: string, targetPath: string): Promise<void> {
  if (dirname(linkPath) !== dirname(targetPath) || !existsSync(targetPath)) return;
  const existing = await lstat(linkPath).catch(() => undefined);
  if (existing && !existing.isSymbolicLink()) return;
  const temp = `${linkPath}.${process.pid}.tmp`;
  await rm(temp, { force: true });
  await symlink(basename(targetPath), temp);
  await rename(temp, linkPath);
}

/** The amis.json `brl ami publish` wrote for the latest build of a variant, and that build's version. */
export async function latestAmisFile(projectDir: string, variant: string, arch: string): Promise<{ amisPath: string; imageVersion: string }> {
  const built = await locateVariantImages(projectDir, arch, variant);
  return { amisPath: join(built.dir, `${built.prefix}-amis.json`), imageVersion: `${built.version}-${built.buildId}` };
}
