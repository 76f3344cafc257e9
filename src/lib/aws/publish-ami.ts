// `brl ami publish`: upload snapshots, register the AMI in the base region, copy it to the others (spec §2).
import { CopyImageCommand, DeleteSnapshotCommand, ModifyImageAttributeCommand, ModifySnapshotAttributeCommand, RegisterImageCommand, type Image } from '@aws-sdk/client-ec2';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { basename } from 'node:path';
import type { ListrTask } from 'listr2';
import { runTasks, type ProgressMode } from '../cli/progress.ts';
import { BrlError, ExitCode } from '../core/errors.ts';
import { assertUefiDataFits } from '../secure-boot/aws-uefi-data.ts';
import { findOwnImage, snapshotIdsOf } from './ami-lookup.ts';
import { writeAmisFile, type AmisFile } from './amis-file.ts';
import type { AwsClients } from './clients.ts';
import { uploadSnapshot, type SnapshotUpload, type SnapshotUploadOptions, type UploadProgress } from './ebs-upload.ts';
import { describeDiskImage, openRawImage, type DiskImageFile } from './images.ts';
import { accountOfRoleArn } from './infra.ts';
import { describeImageVisibility } from './permissions.ts';
import { registerImageInput, type AmiSpec, type PublishSizes } from './register.ts';
import { defaultPollSettings, waitForImageAvailable, waitForSnapshotCompleted, type PollSettings } from './wait.ts';

export interface PublishAmiOptions {
  clients: AwsClients;
  /** The first is the base region, where the image is uploaded and registered. */
  regions: string[];
  name: string;
  description: string | undefined;
  arch: string;
  osImage: DiskImageFile;
  /** Only for the split plan. */
  dataImage: DiskImageFile | undefined;
  sizes: PublishSizes;
  /** The boot path is signed: the AMI registers with boot mode uefi and `uefiData`. */
  uefiSecureBoot: boolean;
  /** The base64 UEFI variable store (`uefiDataForPublish`); refused before any upload when over EC2's 64 KiB. */
  uefiData: string | undefined;
  amiSpec: AmiSpec;
  /** Role ARN per region from Infra.toml; their accounts get permissions on the AMI. */
  regionRoles: Record<string, string>;
  amisPath: string;
  upload?: Pick<SnapshotUploadOptions, 'workers' | 'maxAttempts' | 'retryDelayMs' | 'stallTimeoutMs'>;
  copyConcurrency?: number;
  poll?: PollSettings;
  progress?: ProgressMode;
}

export type RegionOutcome = 'reused' | 'registered' | 'copied' | 'failed';

export interface RegionResult {
  region: string;
  outcome: RegionOutcome;
  id?: string;
  error?: string;
}

export interface PublishAmiResult {
  name: string;
  baseRegion: string;
  amisPath: string;
  regions: RegionResult[];
  uploads: SnapshotUpload[];
  failedRegions: string[];
}

interface PublishContext {
  baseImage?: Image;
  uploads: SnapshotUpload[];
  grantAccounts: string[];
  results: Map<string, RegionResult>;
}

function describeProgress(p: UploadProgress, startedAt: number): string {
  const MiB = 1024 * 1024;
  const seconds = Math.max((performance.now() - startedAt) / 1000, 0.001);
  return `read ${(p.bytesRead / MiB).toFixed(0)}/${(p.sizeBytes / MiB).toFixed(0)} MiB, ${p.blocksUploaded} blocks uploaded (${p.blocksSkipped} empty skipped), ${(p.bytesUploaded / MiB / seconds).toFixed(1)} MiB/s`;
}

async function grantAccounts(clients: AwsClients, region: string, image: Image, accounts: string[]): Promise<void> {
  if (accounts.length === 0 || !image.ImageId) return;
  const ec2 = clients.ec2(region);
  const userIds = accounts.map((UserId) => ({ UserId }));
  for (const snapshotId of snapshotIdsOf(image)) {
    await ec2.send(new ModifySnapshotAttributeCommand({ SnapshotId: snapshotId, Attribute: 'createVolumePermission', CreateVolumePermission: { Add: userIds } }));
  }
  await ec2.send(new ModifyImageAttributeCommand({ ImageId: image.ImageId, LaunchPermission: { Add: userIds } }));
}

export async function publishAmi(options: PublishAmiOptions): Promise<PublishAmiResult> {
  const { clients, name } = options;
  const [baseRegion, ...copyRegions] = options.regions;
  if (baseRegion === undefined) throw new BrlError('no regions to publish to', { exitCode: ExitCode.usage, code: 'NO_AWS_REGION' });
  if (options.uefiSecureBoot && options.uefiData !== undefined) assertUefiDataFits(options.uefiData, name);
  const poll = options.poll ?? defaultPollSettings();
  const baseEc2 = clients.ec2(baseRegion);
  const context: PublishContext = { uploads: [], grantAccounts: [], results: new Map() };
  const setResult = (result: RegionResult) => context.results.set(result.region, result);
  const deleteSnapshots = async (snapshotIds: string[]) => {
    for (const snapshotId of snapshotIds) await baseEc2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })).catch(() => undefined);
  };

  const upload = (file: DiskImageFile, label: string, publishVolumeGiB: number): ListrTask<PublishContext> => ({
    title: `Upload the ${label} image ${basename(file.path)} to ${baseRegion}`,
    skip: (ctx) => (ctx.baseImage === undefined ? false : 'the AMI exists'),
    task: async (ctx, task) => {
      const image = await describeDiskImage(file);
      if (image.sizeBytes > publishVolumeGiB * 1024 ** 3) {
        throw new BrlError(`${image.path} (${image.sizeBytes} bytes) does not fit the ${publishVolumeGiB} GiB ${label} volume`, {
          hint: 'check image-layout in the variant definition',
          exitCode: ExitCode.badInput,
          code: 'IMAGE_TOO_LARGE',
        });
      }
      const startedAt = performance.now();
      let lastShown = 0;
      let result: SnapshotUpload;
      try {
        result = await uploadSnapshot({
          clients,
          region: baseRegion,
          openImage: () => openRawImage(image),
          sizeBytes: image.sizeBytes,
          description: basename(image.path),
          ...options.upload,
          onProgress: (progress) => {
            const now = performance.now();
            if (now - lastShown < 1000) return;
            lastShown = now;
            task.output = describeProgress(progress, startedAt);
          },
        });
      } catch (error) {
        // The failed upload deleted its own snapshot; the ones before it would be orphans.
        await deleteSnapshots(ctx.uploads.map((u) => u.snapshotId));
        throw error;
      }
      ctx.uploads.push(result);
      task.title = `Uploaded ${label} image as ${result.snapshotId}: ${result.blocksUploaded} blocks, ${result.blocksSkipped} empty blocks skipped, ${result.seconds.toFixed(1)} s`;
    },
  });

  const tasks: ListrTask<PublishContext>[] = [
    {
      title: `Look for an existing AMI named ${name} in ${baseRegion}`,
      task: async (ctx, task) => {
        ctx.baseImage = await findOwnImage(baseEc2, baseRegion, name, options.arch);
        if (ctx.baseImage) task.title = `Reusing ${ctx.baseImage.ImageId} (${name}) in ${baseRegion}`;
      },
    },
    upload(options.osImage, 'OS', options.sizes.osVolumeGiB),
    ...(options.dataImage && options.sizes.dataVolumeGiB !== undefined ? [upload(options.dataImage, 'data', options.sizes.dataVolumeGiB)] : []),
    {
      title: `Register ${name} in ${baseRegion}`,
      skip: (ctx) => (ctx.baseImage === undefined ? false : 'the AMI exists'),
      task: async (ctx, task) => {
        const created = ctx.uploads.map((u) => u.snapshotId);
        try {
          for (const snapshotId of created) await waitForSnapshotCompleted(baseEc2, baseRegion, snapshotId, poll);
          const [osUpload, dataUpload] = ctx.uploads;
          const input = registerImageInput({
            name,
            description: options.description,
            arch: options.arch,
            osSnapshotId: osUpload?.snapshotId ?? '',
            dataSnapshotId: dataUpload?.snapshotId,
            sizes: options.sizes,
            uefiSecureBoot: options.uefiSecureBoot,
            uefiData: options.uefiData,
            amiSpec: options.amiSpec,
          });
          const { ImageId } = await baseEc2.send(new RegisterImageCommand(input));
          if (!ImageId) throw new Error(`RegisterImage in ${baseRegion} returned no ImageId`);
          ctx.baseImage = { ImageId, Name: name };
          task.title = `Registered ${ImageId} (${name}) in ${baseRegion}`;
        } catch (error) {
          // Snapshots nobody references would only cost money; a rerun uploads them again.
          await deleteSnapshots(created);
          throw new BrlError(`registering ${name} in ${baseRegion} failed: ${(error as Error).message}; deleted snapshots ${created.join(', ')}`, {
            exitCode: ExitCode.failure,
            code: 'REGISTER_IMAGE_FAILED',
            cause: error,
          });
        }
      },
    },
    {
      title: `Wait until the AMI is available in ${baseRegion}`,
      task: async (ctx) => {
        const reused = ctx.uploads.length === 0;
        ctx.baseImage = await waitForImageAvailable(baseEc2, baseRegion, ctx.baseImage?.ImageId ?? '', poll, reused ? 1 : 3);
        setResult({ region: baseRegion, outcome: reused ? 'reused' : 'registered', id: ctx.baseImage.ImageId ?? '' });
      },
    },
    {
      title: 'Grant the accounts of the configured roles access',
      enabled: () => Object.keys(options.regionRoles).length > 0,
      task: async (ctx, task) => {
        const { Account } = await clients.sts(baseRegion).send(new GetCallerIdentityCommand({}));
        const accounts = new Set(Object.values(options.regionRoles).map((role) => accountOfRoleArn(role) ?? ''));
        accounts.delete(Account ?? '');
        ctx.grantAccounts = [...accounts].filter((account) => account !== '').sort();
        if (ctx.baseImage) await grantAccounts(clients, baseRegion, ctx.baseImage, ctx.grantAccounts);
        task.title = ctx.grantAccounts.length > 0 ? `Granted accounts ${ctx.grantAccounts.join(', ')}` : 'No other accounts to grant';
      },
    },
    {
      title: `Copy to ${copyRegions.join(', ')}`,
      enabled: () => copyRegions.length > 0,
      task: (ctx, task) =>
        task.newListr(
          copyRegions.map((region) => ({
            title: region,
            task: async (_, subtask) => {
              try {
                const ec2 = clients.ec2(region);
                const existing = await findOwnImage(ec2, region, name, options.arch);
                let imageId = existing?.ImageId;
                if (!imageId) {
                  ({ ImageId: imageId } = await ec2.send(
                    new CopyImageCommand({ Name: name, Description: options.description, SourceImageId: ctx.baseImage?.ImageId, SourceRegion: baseRegion }),
                  ));
                  if (!imageId) throw new Error(`CopyImage to ${region} returned no ImageId`);
                }
                subtask.title = `${region}: ${existing ? 'reusing' : 'copied to'} ${imageId}, waiting until available`;
                const image = await waitForImageAvailable(ec2, region, imageId, poll, existing ? 1 : 3);
                await grantAccounts(clients, region, image, ctx.grantAccounts);
                setResult({ region, outcome: existing ? 'reused' : 'copied', id: imageId });
                subtask.title = `${region}: ${imageId} available`;
              } catch (error) {
                setResult({ region, outcome: 'failed', error: (error as Error).message });
                throw error;
              }
            },
          })),
          { concurrent: options.copyConcurrency ?? 4, exitOnError: false },
        ),
    },
  ];
  await runTasks(tasks, { mode: options.progress ?? 'auto', context });

  const amis: AmisFile = {};
  for (const result of context.results.values()) {
    if (result.outcome === 'failed' || !result.id) continue;
    const visibility = await describeImageVisibility(clients.ec2(result.region), result.id);
    amis[result.region] = { id: result.id, name, public: visibility.public, launch_permissions: visibility.launchPermissions };
  }
  await writeAmisFile(options.amisPath, amis);
  const regions = options.regions.map((region) => context.results.get(region) ?? { region, outcome: 'failed' as const, error: 'not attempted' });
  return {
    name,
    baseRegion,
    amisPath: options.amisPath,
    regions,
    uploads: context.uploads,
    failedRegions: regions.filter((r) => r.outcome === 'failed').map((r) => r.region),
  };
}
