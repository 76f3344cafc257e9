// `brl ami validate` (pubsys validate-ami): the AMI EC2 holds in every region of amis.json, against the file and
// the RegisterImage settings the variant publishes with.
import { DescribeImagesCommand, DescribeSnapshotAttributeCommand, type EC2Client, type Image } from '@aws-sdk/client-ec2';
import { BrlError, ExitCode } from '../core/errors.ts';
import { snapshotIdsOf } from './ami-lookup.ts';
import type { AmisFile, LaunchPermission, RegionAmi } from './amis-file.ts';
import type { AwsClients } from './clients.ts';
import { loadVariant } from '../variant/definition.ts';
import { describeImageVisibility } from './permissions.ts';
import { bootSettings, ec2Architecture, loadAmiSpec } from './register.ts';
import { check, validateRegions, type Check, type ValidationResult } from './validation.ts';

/** What every region's image must be besides what amis.json records; an undefined field is not checked. */
export interface ExpectedImage {
  architecture: 'x86_64' | 'arm64';
  enaSupport?: boolean;
  /** `null`: registered without a boot mode, so EC2 reports none. */
  bootMode?: string | null;
}

/**
 * The settings `brl ami publish` registers the variant with. Outside a project there is no variant definition
 * (amispec.toml, Secure Boot), so only the architecture is known.
 */
export async function expectedImage(projectDir: string | undefined, variant: string, arch: string): Promise<ExpectedImage> {
  const architecture = ec2Architecture(arch);
  if (projectDir === undefined) return { architecture };
  const definition = await loadVariant(projectDir, variant);
  const { bootMode, enaSupport } = bootSettings(await loadAmiSpec(definition.dir), definition.features['uefi-secure-boot']);
  return { architecture, bootMode: bootMode ?? null, enaSupport };
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
