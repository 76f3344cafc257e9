// Launch permissions as EC2 reports them, converted to amis.json's form.
import { DescribeImageAttributeCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { LaunchPermission } from './amis-file.ts';

export interface ImageVisibility {
  public: boolean;
  launchPermissions: LaunchPermission[];
}

export async function describeImageVisibility(ec2: EC2Client, imageId: string): Promise<ImageVisibility> {
  const { LaunchPermissions = [] } = await ec2.send(new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: 'launchPermission' }));
  const launchPermissions: LaunchPermission[] = [];
  for (const p of LaunchPermissions) {
    if (p.Group) launchPermissions.push({ group: p.Group });
    if (p.UserId) launchPermissions.push({ userid: p.UserId });
    if (p.OrganizationArn) launchPermissions.push({ organizationarn: p.OrganizationArn });
    if (p.OrganizationalUnitArn) launchPermissions.push({ organizationalunitarn: p.OrganizationalUnitArn });
  }
  return { public: launchPermissions.some((p) => 'group' in p && p.group === 'all'), launchPermissions };
}
