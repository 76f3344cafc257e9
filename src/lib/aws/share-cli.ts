// The flags and the run that `brl ami grant` and `brl ami revoke` share.
import { Flags } from '@oclif/core';
import { readAmisFile } from './amis-file.ts';
import { AwsClients } from './clients.ts';
import { withAwsErrors } from './errors.ts';
import { splitList } from './infra.ts';
import { shareAmi, type ShareAmiResult } from './share-ami.ts';
import { BrlError, ExitCode } from '../core/errors.ts';

export const shareFlags = {
  'ami-input': Flags.string({ description: 'amis.json written by brl ami publish; rewritten with the new permissions', required: true }),
  regions: Flags.string({ description: 'comma-separated subset of the regions in amis.json (default: all)' }),
  'user-ids': Flags.string({ description: 'comma-separated AWS account ids' }),
  'group-names': Flags.string({ description: 'comma-separated groups; "all" means public' }),
  'organization-arns': Flags.string({ description: 'comma-separated AWS Organizations ARNs (AMIs only; snapshots take accounts and groups)' }),
  'organizational-unit-arns': Flags.string({ description: 'comma-separated organizational unit ARNs (AMIs only)' }),
};

export interface ShareFlags {
  'ami-input': string;
  regions?: string | undefined;
  'user-ids'?: string | undefined;
  'group-names'?: string | undefined;
  'organization-arns'?: string | undefined;
  'organizational-unit-arns'?: string | undefined;
}

export async function runShare(operation: 'grant' | 'revoke', flags: ShareFlags, progress: 'auto' | 'silent'): Promise<ShareAmiResult> {
  const amis = await readAmisFile(flags['ami-input']);
  const clients = new AwsClients();
  try {
    return await withAwsErrors(() => shareAmi({
      clients,
      operation,
      amis,
      amisPath: flags['ami-input'],
      regions: splitList(flags.regions),
      principals: {
        userIds: splitList(flags['user-ids']) ?? [],
        groupNames: splitList(flags['group-names']) ?? [],
        organizationArns: splitList(flags['organization-arns']) ?? [],
        organizationalUnitArns: splitList(flags['organizational-unit-arns']) ?? [],
      },
      progress,
    }));
  } finally {
    clients.destroy();
  }
}

/** The human summary; partial failures make the command exit non-zero after amis.json is rewritten. */
export function shareSummary(result: ShareAmiResult): { lines: string[]; failure: BrlError | undefined } {
  const lines = Object.entries(result.amis)
    .filter(([region]) => result.regions.includes(region))
    .map(([region, ami]) => `${region.padEnd(16)} ${ami.id.padEnd(22)} ${ami.public ? 'public' : 'private'} ${JSON.stringify(ami.launch_permissions ?? [])}`);
  lines.push(`${result.snapshotsModified} snapshot(s) and ${result.imagesModified} AMI(s) changed; wrote ${result.amisPath}`);
  const failure =
    result.failures.length === 0
      ? undefined
      : new BrlError(`${result.failures.length} change(s) failed: ${result.failures.map((f) => `${f.resource} in ${f.region}: ${f.error}`).join('; ')}`, {
          hint: 'rerun the same command; changes already made are kept',
          exitCode: ExitCode.failure,
          code: 'AMI_SHARE_FAILED',
        });
  return { lines, failure };
}
