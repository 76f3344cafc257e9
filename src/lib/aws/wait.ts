// Polling helpers for EC2's eventually consistent states (snapshot `completed`, image `available`).
import { DescribeImagesCommand, DescribeSnapshotsCommand, type EC2Client, type Image } from '@aws-sdk/client-ec2';
import { setTimeout as sleep } from 'node:timers/promises';
import { BrlError, ExitCode } from '../core/errors.ts';

export interface PollSettings {
  intervalMs: number;
  maxAttempts: number;
}

/**
 * Upstream pubsys polls every 2 s, 90 attempts. `BRL_AWS_POLL_INTERVAL_MS` shortens the interval for
 * AWS-compatible endpoints that settle instantly (and for tests).
 */
export function defaultPollSettings(): PollSettings {
  const override = Number(process.env.BRL_AWS_POLL_INTERVAL_MS);
  return { intervalMs: Number.isFinite(override) && override >= 0 && process.env.BRL_AWS_POLL_INTERVAL_MS ? override : 2000, maxAttempts: 90 };
}

/** Waits until the snapshot is `completed`; fails on `error` or when the attempts run out. */
export async function waitForSnapshotCompleted(ec2: EC2Client, region: string, snapshotId: string, poll: PollSettings): Promise<void> {
  // Snapshots take longer than images to settle, so they get ten times the attempts.
  for (let attempt = 1; attempt <= poll.maxAttempts * 10; attempt++) {
    const { Snapshots = [] } = await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }));
    const state = Snapshots[0]?.State;
    if (state === 'completed') return;
    if (state === 'error') {
      throw new BrlError(`snapshot ${snapshotId} in ${region} went into the error state`, {
        hint: `check the snapshot's StateMessage with: aws ec2 describe-snapshots --region ${region} --snapshot-ids ${snapshotId}`,
        code: 'SNAPSHOT_FAILED',
      });
    }
    await sleep(poll.intervalMs);
  }
  throw new BrlError(`snapshot ${snapshotId} in ${region} did not complete in time`, { exitCode: ExitCode.network, code: 'SNAPSHOT_TIMEOUT' });
}

/**
 * Waits until the image is `available` for `successesRequired` consecutive polls (pubsys asks 3 for a new
 * image, because a fresh AMI can flip back while EC2 converges, and 1 for an existing one).
 */
export async function waitForImageAvailable(
  ec2: EC2Client,
  region: string,
  imageId: string,
  poll: PollSettings,
  successesRequired: number,
): Promise<Image> {
  let successes = 0;
  for (let attempt = 1; attempt <= poll.maxAttempts; attempt++) {
    let image: Image | undefined;
    try {
      const { Images = [] } = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
      image = Images[0];
    } catch (error) {
      // A just-registered or just-copied id can be unknown for a moment.
      if ((error as { name?: string }).name !== 'InvalidAMIID.NotFound') throw error;
    }
    if (image?.State === 'failed' || image?.State === 'error' || image?.State === 'invalid') {
      throw new BrlError(`AMI ${imageId} in ${region} is in state ${image.State}`, {
        hint: image.StateReason?.Message ?? 'describe the image for its StateReason',
        code: 'AMI_FAILED',
      });
    }
    successes = image?.State === 'available' ? successes + 1 : 0;
    if (successes >= successesRequired && image) return image;
    await sleep(poll.intervalMs);
  }
  throw new BrlError(`AMI ${imageId} in ${region} did not become available in time`, { exitCode: ExitCode.network, code: 'AMI_TIMEOUT' });
}
