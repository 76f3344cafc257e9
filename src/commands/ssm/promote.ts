import { Flags } from '@oclif/core';
import { AwsClients } from '../../lib/aws/clients.ts';
import { withAwsErrors } from '../../lib/aws/errors.ts';
import { loadAwsSettings } from '../../lib/aws/settings.ts';
import { describeChanges, ssmFlags } from '../../lib/aws/ssm-cli.ts';
import { parametersByRegion } from '../../lib/aws/ssm-parameters.ts';
import { promoteSsmParameters, type SsmPromoteResult } from '../../lib/aws/ssm-publish.ts';
import { loadTemplates, requirePrefix } from '../../lib/aws/ssm-templates.ts';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { writeJsonAtomic } from '../../lib/core/fs.ts';

export default class SsmPromote extends BrlCommand<SsmPromoteResult> {
  static override summary = "Point one version's SSM parameters (e.g. latest) at another version's values.";
  static override description = [
    'Renders every template name with {image_version} = --source and = --target, and copies each source value to the target name in every region; unchanged targets are left alone, so a rerun is a no-op.',
    'Refuses unless every AMI the promoted values name exists, is available and is public; --force skips that check and reports what it let through. Rolling back is promoting an older version.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> ssm promote --variant aws-dev --arch x86_64 --source 1.0.0-abcdef12 --target 1.0.0',
    '<%= config.bin %> ssm promote --variant aws-dev --arch x86_64 --source 1.0.0 --target latest --regions us-west-2,us-east-1',
  ];

  static override flags = {
    ...ssmFlags,
    source: Flags.string({ description: 'version whose parameters to copy, e.g. 1.0.0-abcdef12', required: true }),
    target: Flags.string({ description: 'version name to point at them, e.g. latest', required: true }),
    force: Flags.boolean({ description: 'promote even AMIs that are missing, not available or not public' }),
  };

  async run(): Promise<SsmPromoteResult> {
    const { flags } = await this.parse(SsmPromote);
    const settings = await loadAwsSettings(flags);
    const clients = new AwsClients();
    let result: SsmPromoteResult;
    try {
      result = await withAwsErrors(async () => promoteSsmParameters({
        clients,
        regions: await settings.regions(),
        variant: flags.variant,
        arch: flags.arch,
        source: flags.source,
        target: flags.target,
        templates: await loadTemplates(flags['template-path']),
        prefix: requirePrefix(flags['ssm-prefix'] ?? settings.infra.ssmPrefix),
        force: flags.force,
      }));
    } finally {
      clients.destroy();
    }
    if (flags['ssm-parameter-output']) await writeJsonAtomic(flags['ssm-parameter-output'], parametersByRegion(result.changes));
    for (const problem of result.forcedPast) this.logToStderr(`--force: promoted although ${problem}`);
    for (const line of describeChanges(result.changes)) this.say(line);
    return result;
  }
}
