// The composition stages of a variant build: staged trees → filesystems and verity → disks → artifacts.
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { mapLimit } from '../core/concurrency.ts';
import { BrlError, ExitCode } from '../core/errors.ts';
import { writeJsonAtomic } from '../core/fs.ts';
import { brlInstallDir } from '../core/paths.ts';
import { derivedUuid, idHash, veritySalt, verityUuid, type IdContext } from '../image/ids.ts';
import { findPlanned, planDataDisk, planOsDisk, type DiskPlan, type LayoutOptions } from '../image/layout.ts';
import { formatVerity, type VerityResult } from '../image/verity.ts';
import { bottlerocketVerityTable, renderVerityTable } from '../image/verity-table.ts';
import {
  artifactPrefix, compressDiskLz4, compressLz4, convertDisk, describeArtifact, diskSuffix, linkArtifact, type ArtifactNaming, type ArtifactRecord,
} from './artifacts.ts';
import { encodeBootconfig } from './bootconfig.ts';
import { buildManifestName, describeDisk, manifestPackages, publishSizes, type BuildManifest } from './build-manifest.ts';
import type { BuildIdentity } from './build-identity.ts';
import { kernelParametersFor, type Architecture, type VariantDefinition } from './definition.ts';
import { writeDisk, type WrittenDisk } from './disk.ts';
import {
  bootExt4, dataExt4, ext4UsedBytes, FilesystemTooSmall, makeErofs, makeExt4, privateExt4, rootExt4,
} from './filesystems.ts';
import { placeBootloader, takeBootloaderFiles, type BootloaderFiles } from './bootloader.ts';
import { renderGrubConfig, type InitrdParts } from './grub.ts';
import { buildInitramfs, kernelHasBootconfig } from './initramfs.ts';
import { buildInventory } from './inventory.ts';
import { ovfTemplateName, writeOva } from './ova.ts';
import type { ReleaseInfo } from './release.ts';
import { assembleRootTree } from './rootfs.ts';
import type { RpmPackage } from '../packages/rpm.ts';
import { bootSigningSummary, makeSignedGrubImage, placeGrubKey, signKernel, writeGrubSignature } from '../secure-boot/boot-path.ts';
import type { BootSigningKeys } from '../secure-boot/key-set.ts';
import { cycloneDxDocument, spdxDocument } from './sbom.ts';
import { fileContextsPath, labelTree } from './selinux.ts';
import { checkSelinuxBoot, type SelinuxSummary } from './selinux-boot.ts';
import { installPackages } from './staging.ts';
import { clampTimes, walkTree } from './tree.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Everything the stages share about one build. */
export interface Work {
  definition: VariantDefinition;
  release: ReleaseInfo;
  identity: BuildIdentity;
  arch: Architecture;
  ids: IdContext;
  naming: ArtifactNaming;
  prettyName: string;
  tempDir: string;
  outDir: string;
  packages: RpmPackage[];
  tufRootJson: string | undefined;
  caBundle: string | undefined;
  /** The keys that sign the boot path (uefi-secure-boot), loaded and checked before the build started. */
  bootSigning: BootSigningKeys | undefined;
  warnings: string[];
  warn: (message: string) => void;
}

/** What the stages produce, filled in as they run. */
export interface Composition {
  rootTree: string;
  bootTree: string;
  efiTree: string;
  bootloader: BootloaderFiles;
  initrd: InitrdParts;
  privateTree: string;
  rootLabels: Map<string, string> | undefined;
  bootLabels: Map<string, string> | undefined;
  fileContexts: string | undefined;
  selinux: SelinuxSummary;
  osPlan: DiskPlan;
  dataPlan: DiskPlan | undefined;
  rootImage: string;
  verityImage: string;
  verity: VerityResult;
  bootImage: string;
  privateImage: string;
  dataImage: string | undefined;
  osDisk: string;
  osWritten: WrittenDisk;
  dataDisk: string | undefined;
  dataWritten: WrittenDisk | undefined;
  artifacts: ArtifactRecord[];
}

export async function stageTrees(work: Work): Promise<Partial<Composition>> {
  const keys = work.bootSigning;
  const epoch = work.identity.sourceDateEpoch;
  const staging = join(work.tempDir, 'staging');
  const bootTree = join(work.tempDir, 'boot-tree');
  const efiTree = join(work.tempDir, 'efi-tree');
  const privateTree = join(work.tempDir, 'private-tree');
  await mkdir(staging);
  const rootTree = await installPackages(staging, work.packages, work.arch);
  const inventory = buildInventory(work.packages, work.identity.sourceDateEpoch);
  await writeJsonAtomic(join(work.outDir, 'application-inventory.json'), inventory);
  const assembled = await assembleRootTree({
    rootTree, bootTree, efiTree, inventory,
    osRelease: { variant: work.definition.name, version: work.release.version, buildId: work.identity.buildId, prettyName: work.prettyName },
    features: work.definition.features,
    imageFormat: work.definition.imageFormat,
    ...(work.tufRootJson === undefined ? {} : { tufRootJson: work.tufRootJson }),
    ...(work.caBundle === undefined ? {} : { caBundle: work.caBundle }),
    ...(keys === undefined ? {} : {
      // The OpenPGP signature covers the Authenticode-signed kernel: GRUB reads the file as it lies on BOOT.
      signKernel: async (vmlinuz: string) => {
        await signKernel(vmlinuz, keys, 0o600);
        await writeGrubSignature(vmlinuz, keys, epoch, 0o600);
      },
    }),
    warn: work.warn,
  });
  // The kernel's config, read once: SELinux's and bootconfig's checks both depend on it.
  const kernelConfigPath = join(bootTree, 'config');
  const kernelConfig = existsSync(kernelConfigPath) ? await readFile(kernelConfigPath, 'utf8') : undefined;
  const selinux = await checkSelinuxBoot({
    rootTree, kernelConfig, kernelParameters: kernelParametersFor(work.definition, work.arch), variantManifest: work.definition.manifestPath,
  });
  const bootloader = await takeBootloaderFiles(bootTree, efiTree, join(work.tempDir, 'bootloader'));
  if (keys !== undefined) {
    await signBootloader(bootloader, keys, work.tempDir);
    await placeGrubKey(rootTree, keys);
  }
  const initramfs = assembled.kernelVersion === undefined ? undefined : await buildInitramfs({
    rootTree,
    kernelVersion: assembled.kernelVersion,
    rootFilesystem: work.definition.features['erofs-root-partition'] ? 'erofs' : 'ext4',
    epoch: work.identity.sourceDateEpoch,
  });
  if (initramfs !== undefined) {
    await writeFile(join(bootTree, 'initrd.img'), initramfs.archive, { mode: 0o600 });
    if (keys !== undefined) await writeGrubSignature(join(bootTree, 'initrd.img'), keys, epoch, 0o600);
  }
  const initrd: InitrdParts = { initramfs: initramfs !== undefined, bootconfig: kernelHasBootconfig(kernelConfig) };
  if (keys !== undefined && initrd.bootconfig) {
    throw new BrlError('uefi-secure-boot: the kernel is built with CONFIG_BOOT_CONFIG, so GRUB would load PRIVATE\'s bootconfig.data, which no build can sign', {
      hint: 'use a kernel without CONFIG_BOOT_CONFIG for Secure Boot variants (Debian\'s cloud kernel has none), or turn uefi-secure-boot off',
      exitCode: ExitCode.badInput,
      code: 'SECURE_BOOT_BOOTCONFIG',
    });
  }
  await mkdir(privateTree);
  await writeFile(join(privateTree, 'bootconfig.data'), encodeBootconfig(assembled.bootconfig));

  const fileContexts = existsSync(join(rootTree, fileContextsPath)) ? join(work.tempDir, 'file_contexts') : undefined;
  let rootLabels: Map<string, string> | undefined;
  let bootLabels: Map<string, string> | undefined;
  if (fileContexts !== undefined) {
    await writeFile(fileContexts, await readFile(join(rootTree, fileContextsPath)));
    rootLabels = await labelTree(fileContexts, await walkTree(rootTree));
    const bootEntries = (await walkTree(bootTree)).map((entry) => ({ ...entry, path: `boot/${entry.path}` }));
    const prefixed = await labelTree(fileContexts, [{ path: 'boot', kind: 'directory' as const }, ...bootEntries]);
    bootLabels = new Map([...prefixed].filter(([path]) => path.startsWith('boot')).map(([path, label]) => [path === 'boot' ? '' : path.slice('boot/'.length), label]));
  }
  const layout: LayoutOptions = {
    osImageSizeGiB: work.definition.layout.osImageSizeGiB,
    dataImageSizeGiB: work.definition.layout.dataImageSizeGiB,
    partitionPlan: work.definition.layout.partitionPlan,
    inPlaceUpdates: work.definition.features['in-place-updates'],
  };
  return { rootTree, bootTree, efiTree, bootloader, initrd, privateTree, rootLabels, bootLabels, fileContexts, selinux, osPlan: planOsDisk(layout), dataPlan: planDataDisk(layout) };
}

export async function buildRoot(work: Work, c: Composition): Promise<Partial<Composition>> {
  const epoch = work.identity.sourceDateEpoch;
  await clampTimes(c.rootTree, epoch);
  const rootPartition = findPlanned(c.osPlan, 'ROOT-A');
  const hashPartition = findPlanned(c.osPlan, 'HASH-A');
  const rootImage = join(work.tempDir, 'root.img');
  if (work.definition.features['erofs-root-partition']) {
    await makeErofs(rootImage, c.rootTree, {
      uuid: derivedUuid(work.ids, 'root-erofs'), epoch, ...(c.fileContexts === undefined ? {} : { fileContexts: c.fileContexts }),
    });
    const size = (await stat(rootImage)).size;
    if (size > rootPartition.sizeMiB * MiB) throw rootTooBig(size, rootPartition.sizeMiB);
    // dm-verity hashes whole 4 KiB blocks.
    if (size % 4096 !== 0) await truncate(rootImage, Math.ceil(size / 4096) * 4096);
  } else {
    const options = { uuid: derivedUuid(work.ids, 'root-ext4'), epoch, profile: rootExt4, ...(c.rootLabels === undefined ? {} : { labels: c.rootLabels }) };
    try {
      await makeExt4(rootImage, c.rootTree, { ...options, sizeMiB: rootPartition.sizeMiB, shrink: true });
    } catch (error) {
      if (!(error instanceof FilesystemTooSmall)) throw error;
      const generousMiB = Math.ceil((await treeBytes(c.rootTree)) * 1.5 / MiB) + 64;
      const needed = await ext4UsedBytes(join(work.tempDir, 'root-measure.img'), c.rootTree, options, generousMiB);
      throw rootTooBig(needed, rootPartition.sizeMiB);
    }
  }
  const verityImage = join(work.tempDir, 'root.verity');
  const verity = await formatVerity(rootImage, verityImage, {
    salt: veritySalt(work.ids), uuid: verityUuid(work.ids), hashFileSize: hashPartition.sizeMiB * MiB,
  });
  return { rootImage, verityImage, verity };
}

function rootTooBig(neededBytes: number, partitionMiB: number): BrlError {
  const neededMiB = neededBytes / MiB;
  return new BrlError(
    `the root filesystem needs at least ${neededMiB.toFixed(1)} MiB but ROOT-A holds ${partitionMiB} MiB (${(neededMiB - partitionMiB).toFixed(1)} MiB too big)`,
    { hint: 'raise image-layout.os-image-size-gib in the variant, or include fewer or smaller packages', exitCode: ExitCode.buildFailed, code: 'ROOT_TOO_BIG' },
  );
}

async function treeBytes(tree: string): Promise<number> {
  let total = 0;
  for (const entry of await walkTree(tree)) total += entry.kind === 'file' ? Math.ceil((await stat(join(tree, entry.path))).size / 4096) * 4096 + 4096 : 4096;
  return total;
}

export async function buildSupportFilesystems(work: Work, c: Composition): Promise<Partial<Composition>> {
  const epoch = work.identity.sourceDateEpoch;
  await mkdir(join(c.bootTree, 'grub'), { recursive: true, mode: 0o700 });
  await writeFile(join(c.bootTree, 'grub', 'grub.cfg'), renderGrubConfig({
    prettyName: work.prettyName,
    versionId: work.release.version,
    kernelParameters: kernelParametersFor(work.definition, work.arch),
    dmVerityTable: bottlerocketVerityTable(c.verity),
    initrd: c.initrd,
    secureBoot: work.bootSigning !== undefined,
  }), { mode: 0o600 });
  if (work.bootSigning !== undefined) await writeGrubSignature(join(c.bootTree, 'grub', 'grub.cfg'), work.bootSigning, epoch, 0o600);
  await clampTimes(c.bootTree, epoch);
  await clampTimes(c.privateTree, epoch);
  const bootImage = join(work.tempDir, 'boot.img');
  const bootPartition = findPlanned(c.osPlan, 'BOOT-A');
  try {
    await makeExt4(bootImage, c.bootTree, {
      uuid: derivedUuid(work.ids, 'boot-ext4'), epoch, profile: bootExt4, sizeMiB: bootPartition.sizeMiB, shrink: true,
      ...(c.bootLabels === undefined ? {} : { labels: c.bootLabels }),
    });
  } catch (error) {
    if (!(error instanceof FilesystemTooSmall)) throw error;
    throw new BrlError(`the kernel and boot files (${((await treeBytes(c.bootTree)) / MiB).toFixed(1)} MiB) do not fit BOOT-A (${bootPartition.sizeMiB} MiB)`, {
      hint: 'raise image-layout.os-image-size-gib', exitCode: ExitCode.buildFailed, code: 'BOOT_TOO_BIG',
    });
  }
  const privateImage = join(work.tempDir, 'private.img');
  await makeExt4(privateImage, c.privateTree, {
    uuid: derivedUuid(work.ids, 'private-ext4'), epoch, profile: privateExt4, sizeMiB: findPlanned(c.osPlan, 'PRIVATE').sizeMiB, shrink: false,
  });
  let dataImage: string | undefined;
  if (!work.definition.features['xfs-data-partition']) {
    const dataPartition = c.dataPlan === undefined ? findPlanned(c.osPlan, 'DATA-A') : findPlanned(c.dataPlan, 'DATA-B');
    dataImage = join(work.tempDir, 'data.img');
    await makeExt4(dataImage, undefined, { uuid: derivedUuid(work.ids, 'data-ext4'), epoch, profile: dataExt4, sizeMiB: dataPartition.sizeMiB, shrink: false });
  }
  return { bootImage, privateImage, dataImage };
}

export async function buildDisks(work: Work, c: Composition): Promise<Partial<Composition>> {
  const unifiedData = c.dataPlan === undefined ? c.dataImage : undefined;
  const osDisk = join(work.tempDir, 'os.img');
  const boot = await placeBootloader(c.bootloader, c.osPlan, work.ids, work.identity.sourceDateEpoch, work.tempDir);
  const osWritten = await writeDisk(osDisk, c.osPlan, work.ids, {
    'BOOT-A': c.bootImage, 'ROOT-A': c.rootImage, 'HASH-A': c.verityImage, PRIVATE: c.privateImage,
    ...(unifiedData === undefined ? {} : { 'DATA-A': unifiedData }),
    ...(boot.efiSystemImage === undefined ? {} : { 'EFI-A': boot.efiSystemImage }),
    ...(boot.biosBootImage === undefined ? {} : { BIOS: boot.biosBootImage }),
  }, boot.mbrBootCode);
  let dataDisk: string | undefined;
  let dataWritten: WrittenDisk | undefined;
  if (c.dataPlan !== undefined) {
    dataDisk = join(work.tempDir, 'data-disk.img');
    dataWritten = await writeDisk(dataDisk, c.dataPlan, work.ids, c.dataImage === undefined ? {} : { 'DATA-B': c.dataImage });
  }
  return { osDisk, osWritten, dataDisk, dataWritten };
}

export async function writeArtifacts(work: Work, c: Composition): Promise<Partial<Composition>> {
  const prefix = artifactPrefix(work.naming);
  const out = work.outDir;
  const format = work.definition.imageFormat;
  const disk = diskSuffix(format);
  const vmdkCid = (target: string): string => idHash(work.ids, target).toString('hex').slice(0, 8);
  const produce = async (source: string, written: WrittenDisk, suffix: string, cidTarget: string): Promise<void> => {
    if (format === 'raw') await compressDiskLz4(source, written, join(out, `${prefix}${suffix}`));
    else await convertDisk(source, join(out, `${prefix}${suffix}`), format, vmdkCid(cidTarget));
  };
  const dataDisk = c.dataDisk;
  const dataWritten = c.dataWritten;
  // Two at a time: the machine's cores, and the largest inputs first.
  const conversions: Array<() => Promise<void>> = [
    () => produce(c.osDisk, c.osWritten, disk, 'vmdk-cid-os'),
    ...(dataDisk === undefined || dataWritten === undefined ? [] : [() => produce(dataDisk, dataWritten, `-data${disk}`, 'vmdk-cid-data')]),
    () => compressLz4(c.rootImage, join(out, `${prefix}-root.ext4.lz4`)),
    () => compressLz4(c.verityImage, join(out, `${prefix}-root.verity.lz4`)),
    () => compressLz4(c.bootImage, join(out, `${prefix}-boot.ext4.lz4`)),
  ];
  await mapLimit(conversions, 2, (convert) => convert());

  let ova: string | undefined;
  if (format === 'vmdk') {
    const templatePath = join(work.definition.dir, ovfTemplateName);
    if (existsSync(templatePath)) {
      const sizes = publishSizes(work.definition.layout);
      ova = basename(await writeOva(out, {
        templatePath, prefix, epoch: work.identity.sourceDateEpoch,
        osVmdk: join(out, `${prefix}${disk}`), dataVmdk: dataDisk === undefined ? undefined : join(out, `${prefix}-data${disk}`),
        osDiskBytes: sizes.os * GiB, dataDiskBytes: sizes.data === undefined ? undefined : sizes.data * GiB,
      }));
    } else {
      work.warn(`variants/${work.definition.name}/${ovfTemplateName} does not exist, so no OVA is written (the vmdk is)`);
    }
  }

  const sbomSubject = {
    imageName: prefix, variant: work.definition.name, arch: work.arch, version: work.release.version, buildId: work.identity.buildId,
    epoch: work.identity.sourceDateEpoch, toolVersion: await toolVersion(), rootHash: c.verity.rootHash,
    bootSigning: bootSigningSummary(work.bootSigning),
  };
  await writeJsonAtomic(join(out, `${prefix}.spdx.json`), spdxDocument(sbomSubject, work.packages));
  await writeJsonAtomic(join(out, `${prefix}.cdx.json`), cycloneDxDocument(sbomSubject, work.packages));

  const kinds: Array<[string, string, string | undefined]> = [
    [`${prefix}${disk}`, 'os-disk', disk],
    ...(c.dataDisk === undefined ? [] : [[`${prefix}-data${disk}`, 'data-disk', `-data${disk}`] as [string, string, string]]),
    ...(ova === undefined ? [] : [[ova, 'ova', '.ova'] as [string, string, string]]),
    [`${prefix}-boot.ext4.lz4`, 'boot-image', '-boot.ext4.lz4'],
    [`${prefix}-root.ext4.lz4`, 'root-image', '-root.ext4.lz4'],
    [`${prefix}-root.verity.lz4`, 'verity-image', '-root.verity.lz4'],
    ['application-inventory.json', 'inventory', undefined],
    [`${prefix}.spdx.json`, 'sbom-spdx', '.spdx.json'],
    [`${prefix}.cdx.json`, 'sbom-cyclonedx', '.cdx.json'],
  ];
  const artifacts: ArtifactRecord[] = [];
  const links: Record<string, string[]> = {};
  for (const [file, kind, suffix] of kinds) {
    artifacts.push(await describeArtifact(out, file, kind));
    if (suffix !== undefined) links[file] = await linkArtifact(out, file, work.naming, suffix);
  }
  const manifest: BuildManifest = {
    schemaVersion: 1,
    variant: work.definition.name,
    arch: work.arch,
    version: work.release.version,
    buildId: work.identity.buildId,
    sourceDateEpoch: work.identity.sourceDateEpoch,
    imageFormat: format,
    imageLayout: work.definition.layout,
    imageFeatures: work.definition.features,
    publishSizesGiB: publishSizes(work.definition.layout),
    rootFilesystem: work.definition.features['erofs-root-partition'] ? 'erofs' : 'ext4',
    verity: {
      rootHash: c.verity.rootHash, salt: c.verity.salt, uuid: c.verity.uuid, dataBlocks: c.verity.dataBlocks, hashSize: c.verity.hashSize,
      table: renderVerityTable(bottlerocketVerityTable(c.verity)),
    },
    disks: {
      os: describeDisk(`${prefix}${disk}`, c.osPlan, c.osWritten.table),
      ...(c.dataPlan === undefined || c.dataWritten === undefined ? {} : { data: describeDisk(`${prefix}-data${disk}`, c.dataPlan, c.dataWritten.table) }),
    },
    packages: manifestPackages(work.packages),
    bootSigning: bootSigningSummary(work.bootSigning),
    artifacts,
    links,
  };
  await writeJsonAtomic(join(out, buildManifestName), manifest);
  return { artifacts };
}

/** GRUB's EFI image made with the project's key in place of the package's unsigned one (uefi-secure-boot). */
async function signBootloader(bootloader: BootloaderFiles, keys: BootSigningKeys, tempDir: string): Promise<void> {
  if (bootloader.efiKit === undefined) {
    throw new BrlError('uefi-secure-boot needs GRUB\'s Secure Boot kit (/boot/grub/x86_64-efi-kit), which no included package ships', {
      hint: 'include the grub package in included-packages, and rebuild it if it predates the kit (brl build package grub --force)',
      exitCode: ExitCode.badInput,
      code: 'FEATURE_NEEDS_PACKAGE',
    });
  }
  const image = join(bootloader.efiTree, 'EFI', 'BOOT', 'bootx64.efi');
  await makeSignedGrubImage(bootloader.efiKit, keys, image, tempDir);
  if (!bootloader.efiFiles.includes('EFI/BOOT/bootx64.efi')) bootloader.efiFiles.push('EFI/BOOT/bootx64.efi');
}

async function toolVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(join(brlInstallDir, 'package.json'), 'utf8')) as { version?: string };
  return pkg.version ?? '0.0.0';
}
