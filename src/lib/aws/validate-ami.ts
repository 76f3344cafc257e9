// `brl ami validate` (pubsys validate-ami): the AMI EC2 holds in every region of amis.json, against the file and
// the RegisterImage settings the variant publishes with.
import { DescribeImageAttributeCommand, DescribeImagesCommand, DescribeSnapshotAttributeCommand, type EC2Client, type Image } from '@aws-sdk/client-ec2';
import { createHash } from 'node:crypto';
import { BrlError, ExitCode, isBrlError } from '../core/errors.ts';
import { decodeAwsUefiData, secureBootCertificatesIn } from '../secure-boot/aws-uefi-data.ts';
import type { FirmwareCertificates } from '../secure-boot/key-set.ts';
import { snapshotIdsOf } from './ami-lookup.ts';
import type { AmisFile, LaunchPermission, RegionAmi } from './amis-file.ts';
import type { AwsClients } from './clients.ts';
import { loadVariant } from '../variant/definition.ts';
import { describeImageVisibility } from './permissions.ts';
import { bootSettings, ec2Architecture, loadAmiSpec } from './register.ts';
import { publishCertificates } from './uefi-data.ts';
import { check, validateRegions, type Check, type ValidationResult } from './validation.ts';

/** What every region's image must be besides what amis.json records; an undefined field is not checked. */
export interface ExpectedImage {
  architecture: 'x86_64' | 'arm64';
  enaSupport?: boolean;
  /** `null`: registered without a boot mode, so EC2 reports none. */
  bootMode?: string | null;
  /** A signed boot path: the certificates the UefiData's PK, KEK and db must hold, as SHA-256 of each DER. */
  uefiCertificates?: { pk: string; kek: string; db: string };
}

const sha256 = (der: Buffer) => createHash('sha256').update(der).digest('hex');

export function expectedUefiCertificates(certificates: FirmwareCertificates): NonNullable<ExpectedImage['uefiCertificates']> {
  return { pk: sha256(certificates.pk), kek: sha256(certificates.kek), db: sha256(certificates.db) };
}

/**
 * The settings `brl ami publish` registers the variant with. Outside a project there is no variant definition
 * (amispec.toml, Secure Boot), so only the architecture is known. A Secure Boot variant's UefiData must hold
 * the certificates of the project's key set.
 */
export async function expectedImage(projectDir: string | undefined, variant: string, arch: string, env: NodeJS.ProcessEnv = process.env): Promise<ExpectedImage> {
  const architecture = ec2Architecture(arch);
  if (projectDir === undefined) return { architecture };
  const definition = await loadVariant(projectDir, variant);
  const signed = definition.features['uefi-secure-boot'];
  const { bootMode, enaSupport } = bootSettings(await loadAmiSpec(definition.dir), signed);
  if (!signed) return { architecture, bootMode: bootMode ?? null, enaSupport };
  const { certificates } = await publishCertificates(projectDir, variant, env);
  return { architecture, bootMode: bootMode ?? null, enaSupport, uefiCertificates: expectedUefiCertificates(certificates) };
}

export interface ValidateAmiOptions {
  clients: AwsClients;
  amis: AmisFile;
  amisPath: string;
  /** A subset of the file's regions; all of them when undefined. */
  regions: string[] | undefined;
  expected: ExpectedImage;
  concurrency?: number;
}

export interface ValidateAmiResult extends ValidationResult {
  amisPath: string;
}

const none = '(none)';

export async function validateAmis(options: ValidateAmiOptions): Promise<ValidateAmiResult> {
  const { amis, clients } = options;
  const regions = options.regions ?? Object.keys(amis).sort();
  for (const region of regions) {
    if (!amis[region]) {
      throw new BrlError(`${options.amisPath} has no AMI for ${region}`, { hint: `its regions: ${Object.keys(amis).join(', ')}`, exitCode: ExitCode.usage, code: 'UNKNOWN_REGION' });
    }
  }
  const result = await validateRegions(regions, options.concurrency ?? 4, (region) => regionChecks(clients.ec2(region), amis[region] as RegionAmi, options.expected));
  return { amisPath: options.amisPath, ...result };
}

async function regionChecks(ec2: EC2Client, ami: RegionAmi, expected: ExpectedImage): Promise<Check[]> {
  const image = await describeImage(ec2, ami.id);
  if (!image) return [check('id', ami.id, 'not found')];
  const checks = [
    check('state', 'available', image.State ?? none),
    check('name', ami.name, image.Name ?? none),
    check('architecture', expected.architecture, image.Architecture ?? none),
  ];
  if (expected.bootMode !== undefined) checks.push(check('boot-mode', expected.bootMode ?? none, image.BootMode ?? none));
  if (expected.enaSupport !== undefined) checks.push(check('ena-support', String(expected.enaSupport), String(image.EnaSupport === true)));
  if (expected.uefiCertificates !== undefined) checks.push(...(await uefiDataChecks(ec2, ami.id, expected.uefiCertificates)));
  if (ami.public === undefined && ami.launch_permissions === undefined) return checks;

  const visibility = await describeImageVisibility(ec2, ami.id);
  if (ami.public !== undefined) checks.push(check('public', String(ami.public), String(visibility.public)));
  if (ami.launch_permissions !== undefined) {
    checks.push(check('launch-permissions', permissionList(ami.launch_permissions), permissionList(visibility.launchPermissions)));
    // Grant gives the snapshots the same accounts and groups (organizations apply to AMIs only), so a shared
    // AMI can be launched; revoke takes them away again.
    const expectedVolume = permissionList(ami.launch_permissions.filter((p) => 'userid' in p || 'group' in p));
    for (const snapshotId of snapshotIdsOf(image)) {
      checks.push(check(`create-volume-permissions ${snapshotId}`, expectedVolume, permissionList(await volumePermissions(ec2, snapshotId))));
    }
  }
  return checks;
}

/** PK, KEK and db of the image's UefiData against the key set's certificates; missing or unreadable data fails all three. */
async function uefiDataChecks(ec2: EC2Client, imageId: string, expected: NonNullable<ExpectedImage['uefiCertificates']>): Promise<Check[]> {
  const { UefiData } = await ec2.send(new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: 'uefiData' }));
  let actual: Record<keyof typeof expected, string>;
  if (UefiData?.Value === undefined) {
    actual = { pk: none, kek: none, db: none };
  } else {
    try {
      const held = secureBootCertificatesIn(decodeAwsUefiData(UefiData.Value, `the UEFI data of ${imageId}`));
      const list = (certificates: Buffer[]) => (certificates.length === 0 ? none : certificates.map(sha256).join(', '));
      actual = { pk: list(held.pk), kek: list(held.kek), db: list(held.db) };
    } catch (error) {
      if (!isBrlError(error)) throw error;
      const unreadable = `unreadable (${error.message})`;
      actual = { pk: unreadable, kek: unreadable, db: unreadable };
    }
  }
  return [
    check('uefi-data PK', expected.pk, actual.pk),
    check('uefi-data KEK', expected.kek, actual.kek),
    check('uefi-data db', expected.db, actual.db),
  ];
}

/** The image, or undefined when EC2 does not know the id in this region. */
async function describeImage(ec2: EC2Client, imageId: string): Promise<Image | undefined> {
  try {
    const { Images = [] } = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
    return Images[0];
  } catch (error) {
    if ((error as { name?: string }).name === 'InvalidAMIID.NotFound') return undefined;
    throw error;
  }
}

async function volumePermissions(ec2: EC2Client, snapshotId: string): Promise<LaunchPermission[]> {
  const { CreateVolumePermissions = [] } = await ec2.send(new DescribeSnapshotAttributeCommand({ SnapshotId: snapshotId, Attribute: 'createVolumePermission' }));
  return CreateVolumePermissions.flatMap((p): LaunchPermission[] => [...(p.Group ? [{ group: p.Group }] : []), ...(p.UserId ? [{ userid: p.UserId }] : [])]);
}

/** Permissions in one order-independent form, e.g. `group:all, userid:111122223333`. */
function permissionList(permissions: LaunchPermission[]): string {
  const items = permissions.map((p) => Object.entries(p).map(([key, value]) => `${key}:${value as string}`).join('')).sort();
  return items.length === 0 ? none : items.join(', ');
}
