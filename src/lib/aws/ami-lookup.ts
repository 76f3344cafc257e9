// Finding AMIs by name, and the snapshots behind them.
import { DescribeImagesCommand, type EC2Client, type Image } from '@aws-sdk/client-ec2';
import { BrlError, ExitCode } from '../core/errors.ts';
import { ec2Architecture } from './register.ts';

/** The account's own hvm machine image with this name and architecture, if any (spec §2 step 1). */
export async function findOwnImage(ec2: EC2Client, region: string, name: string, arch: string): Promise<Image | undefined> {
  const { Images = [] } = await ec2.send(
    new DescribeImagesCommand({
      Owners: ['self'],
      Filters: [
        { Name: 'name', Values: [name] },
        { Name: 'architecture', Values: [ec2Architecture(arch)] },
        { Name: 'image-type', Values: ['machine'] },
        { Name: 'virtualization-type', Values: ['hvm'] },
      ],
    }),
  );
  if (Images.length > 1) {
    throw new BrlError(`${Images.length} AMIs named ${name} exist in ${region}: ${Images.map((image) => image.ImageId).join(', ')}`, {
      hint: 'deregister the duplicates, or publish under another --name',
      exitCode: ExitCode.conflict,
      code: 'DUPLICATE_AMI',
    });
  }
  return Images[0];
}

export function snapshotIdsOf(image: Image): string[] {
  return (image.BlockDeviceMappings ?? []).flatMap((mapping) => (mapping.Ebs?.SnapshotId ? [mapping.Ebs.SnapshotId] : []));
}
