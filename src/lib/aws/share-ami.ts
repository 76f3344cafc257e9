// `brl ami grant|revoke` (pubsys publish-ami, spec §5): snapshot and AMI permissions, in an order that never
// leaves a public AMI pointing at a private snapshot.
import { ModifyImageAttributeCommand, ModifySnapshotAttributeCommand } from '@aws-sdk/client-ec2';
import type { ListrTask } from 'listr2';
import { runTasks, type ProgressMode } from '../cli/progress.ts';
import { mapLimit } from '../core/concurrency.ts';
import { BrlError, ExitCode } from '../core/errors.ts';
import { snapshotIdsOf } from './ami-lookup.ts';
import { writeAmisFile, type AmisFile } from './amis-file.ts';
import type { AwsClients } from './clients.ts';
import { describeImageVisibility } from './permissions.ts';
import { defaultPollSettings, waitForImageAvailable, type PollSettings } from './wait.ts';

export interface Principals {
  userIds: string[];
  groupNames: string[];
  organizationArns: string[];
  organizationalUnitArns: string[];
}

export interface ShareAmiOptions {
  clients: AwsClients;
  operation: 'grant' | 'revoke';
  amisPath: string;
  amis: AmisFile;
  /** A subset of the file's regions; all of them when undefined. */
  regions: string[] | undefined;
  principals: Principals;
  concurrency?: number;
  poll?: PollSettings;
  progress?: ProgressMode;
}

export interface ShareFailure {
  region: string;
  resource: string;
  error: string;
}

export interface ShareAmiResult {
  operation: 'grant' | 'revoke';
  amisPath: string;
  regions: string[];
  snapshotsModified: number;
  imagesModified: number;
  failures: ShareFailure[];
  amis: AmisFile;
}

export function validatePrincipals(principals: Principals): void {
  const total = principals.userIds.length + principals.groupNames.length + principals.organizationArns.length + principals.organizationalUnitArns.length;
  if (total === 0) {
    throw new BrlError('nobody to grant or revoke: no principals given', {
      hint: 'pass at least one of --user-ids, --group-names, --organization-arns, --organizational-unit-arns',
      exitCode: ExitCode.usage,
      code: 'NO_PRINCIPALS',
    });
  }
  for (const group of principals.groupNames) {
    if (group !== 'all') throw new BrlError(`unknown group "${group}"`, { hint: 'EC2 knows one group: all (public)', exitCode: ExitCode.usage, code: 'BAD_GROUP' });
  }
  for (const userId of principals.userIds) {
    if (!/^\d{12}$/.test(userId)) throw new BrlError(`"${userId}" is not a 12-digit AWS account id`, { exitCode: ExitCode.usage, code: 'BAD_ACCOUNT_ID' });
  }
}

export async function shareAmi(options: ShareAmiOptions): Promise<ShareAmiResult> {
  const { clients, principals, amis } = options;
  validatePrincipals(principals);
  const regions = options.regions ?? Object.keys(amis);
  for (const region of regions) {
    if (!amis[region]) {
      throw new BrlError(`${options.amisPath} has no AMI for ${region}`, { hint: `its regions: ${Object.keys(amis).join(', ')}`, exitCode: ExitCode.usage, code: 'UNKNOWN_REGION' });
    }
  }
  const poll = options.poll ?? defaultPollSettings();
  const concurrency = options.concurrency ?? 4;
  const change = options.operation === 'grant' ? 'Add' : 'Remove';
  const failures: ShareFailure[] = [];
  const snapshotsByRegion = new Map<string, string[]>();
  let snapshotsModified = 0;
  let imagesModified = 0;
  const record = (region: string, resource: string, error: unknown) => failures.push({ region, resource, error: (error as Error).message });

  // Only accounts and groups apply to snapshots; organization ARNs are for launch permissions only.
  const volumePermissions = [...principals.userIds.map((UserId) => ({ UserId })), ...principals.groupNames.map((Group) => ({ Group: Group as 'all' }))];
  const launchPermissions = [
    ...principals.userIds.map((UserId) => ({ UserId })),
    ...principals.groupNames.map((Group) => ({ Group: Group as 'all' })),
    ...principals.organizationArns.map((OrganizationArn) => ({ OrganizationArn })),
    ...principals.organizationalUnitArns.map((OrganizationalUnitArn) => ({ OrganizationalUnitArn })),
  ];

  // One region's snapshots in sequence, so the regions in parallel keep at most `concurrency` requests in flight.
  const modifySnapshots = async (region: string) => {
    for (const snapshotId of snapshotsByRegion.get(region) ?? []) {
      try {
        await clients.ec2(region).send(new ModifySnapshotAttributeCommand({ SnapshotId: snapshotId, Attribute: 'createVolumePermission', CreateVolumePermission: { [change]: volumePermissions } }));
        snapshotsModified += 1;
      } catch (error) {
        record(region, snapshotId, error);
      }
    }
  };
  const modifyImage = async (region: string) => {
    const ami = amis[region] as { id: string };
    try {
      await clients.ec2(region).send(new ModifyImageAttributeCommand({ ImageId: ami.id, LaunchPermission: { [change]: launchPermissions } }));
      imagesModified += 1;
    } catch (error) {
      record(region, ami.id, error);
    }
  };
  const snapshotStep = {
    title: `${options.operation === 'grant' ? 'Grant' : 'Revoke'} create-volume permission on the snapshots`,
    run: (region: string) => (volumePermissions.length === 0 ? Promise.resolve() : modifySnapshots(region)),
  };
  const imageStep = { title: `${options.operation === 'grant' ? 'Grant' : 'Revoke'} launch permission on the AMIs`, run: modifyImage };
  // A public AMI must never point at a private snapshot: grant snapshots before AMIs, revoke AMIs before
  // snapshots, and skip a region's second step when its first one failed.
  const [first, second] = options.operation === 'grant' ? [snapshotStep, imageStep] : [imageStep, snapshotStep];
  const failedRegions = () => new Set(failures.map((failure) => failure.region));

  const tasks: ListrTask[] = [
    {
      title: `Wait until the AMIs in ${regions.join(', ')} are available`,
      task: () =>
        mapLimit(regions, concurrency, async (region) => {
          const ami = amis[region] as { id: string };
          const image = await waitForImageAvailable(clients.ec2(region), region, ami.id, poll, 1);
          snapshotsByRegion.set(region, snapshotIdsOf(image));
        }),
    },
    { title: first.title, task: () => mapLimit(regions, concurrency, first.run) },
    {
      title: second.title,
      task: () => {
        const failed = failedRegions();
        return mapLimit(regions.filter((region) => !failed.has(region)), concurrency, second.run);
      },
    },
  ];
  await runTasks(tasks, { mode: options.progress ?? 'auto' });

  // The file records what EC2 now reports, so it stays accurate even after partial failures.
  const updated: AmisFile = { ...amis };
  await mapLimit(regions, concurrency, async (region) => {
    const ami = amis[region] as { id: string; name: string };
    try {
      const visibility = await describeImageVisibility(clients.ec2(region), ami.id);
      updated[region] = { id: ami.id, name: ami.name, public: visibility.public, launch_permissions: visibility.launchPermissions };
    } catch (error) {
      record(region, ami.id, error);
    }
  });
  await writeAmisFile(options.amisPath, updated);
  return { operation: options.operation, amisPath: options.amisPath, regions, snapshotsModified, imagesModified, failures, amis: updated };
}

