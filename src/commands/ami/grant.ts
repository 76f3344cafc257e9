import { BrlCommand } from '../../lib/cli/base-command.ts';
import type { ShareAmiResult } from '../../lib/aws/share-ami.ts';
import { runShare, shareFlags, shareSummary } from '../../lib/aws/share-cli.ts';

export default class AmiGrant extends BrlCommand<ShareAmiResult> {
  static override summary = 'Give accounts, organizations or everyone access to published AMIs and their snapshots.';
  static override description = [
    'Waits until every AMI is available, then changes create-volume permission on the snapshots and launch permission on the AMIs, at most 4 requests at a time.',
    'Snapshots are granted before AMIs, so a public AMI never points at a private snapshot.',
    'amis.json is rewritten with what EC2 reports afterwards; if any change fails the command exits non-zero.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> ami grant --ami-input build/images/x86_64-aws-dev/latest/bottlerocket-aws-dev-x86_64-amis.json --group-names all',
    '<%= config.bin %> ami grant --ami-input amis.json --user-ids 111122223333,444455556666 --regions us-west-2',
  ];

  static override flags = shareFlags;

  async run(): Promise<ShareAmiResult> {
    const { flags } = await this.parse(AmiGrant);
    const result = await runShare('grant', flags, this.jsonEnabled() ? 'silent' : 'auto');
    const { lines, failure } = shareSummary(result);
    for (const line of lines) this.say(line);
    if (failure) throw failure;
    return result;
  }
}
