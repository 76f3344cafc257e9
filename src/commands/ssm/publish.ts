import { Flags } from '@oclif/core';
import { AwsClients } from '../../lib/aws/clients.ts';
import { withAwsErrors } from '../../lib/aws/errors.ts';
import { loadAwsSettings } from '../../lib/aws/settings.ts';
import { describeChanges, parameterPlanInputs, ssmFlags } from '../../lib/aws/ssm-cli.ts';
import { parametersByRegion } from '../../lib/aws/ssm-parameters.ts';
import { publishSsmParameters, type SsmResult } from '../../lib/aws/ssm-publish.ts';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { writeJsonAtomic } from '../../lib/core/fs.ts';

export default class SsmPublish extends BrlCommand<SsmResult> {
  static override summary = 'Set SSM parameters that point at the AMIs in amis.json.';
  static override description = [
    'Renders the parameter templates ({variant} {arch} {image_id} {image_name} {image_version} {region}) for every region in amis.json and sets them under the prefix.',
    'Parameters that already hold the same value are left alone; other values are not overwritten without --allow-clobber, and nothing is written then. AMIs that are not public are refused for names under /aws/ unless --allow-private-images.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> ssm publish --variant aws-dev --arch x86_64 --ssm-prefix /my-org/brl',
    '<%= config.bin %> ssm publish --variant aws-dev --ami-input amis.json --version 1.0.0-abcdef12 --template-path policies/ssm/defaults.toml',
  ];

  static override flags = {
    ...ssmFlags,
    'ami-input': Flags.string({ description: "amis.json from brl ami publish (default: the latest build's)" }),
    version: Flags.string({ description: "image version for {image_version}, e.g. 1.0.0-abcdef12 (default: the latest build's)" }),
    'allow-clobber': Flags.boolean({ description: 'overwrite parameters that hold other values' }),
    'allow-private-images': Flags.boolean({ description: 'allow non-public AMIs for names under /aws/' }),
  };

  async run(): Promise<SsmResult> {
    const { flags } = await this.parse(SsmPublish);
    const settings = await loadAwsSettings(flags);
    const inputs = await parameterPlanInputs(settings, flags);
    const clients = new AwsClients();
    let result: SsmResult;
    try {
      result = await withAwsErrors(async () => publishSsmParameters({
        clients,
        ...inputs,
        allowClobber: flags['allow-clobber'],
        allowPrivateImages: flags['allow-private-images'],
      }));
    } finally {
      clients.destroy();
    }
    if (flags['ssm-parameter-output']) await writeJsonAtomic(flags['ssm-parameter-output'], parametersByRegion(result.changes));
    for (const line of describeChanges(result.changes)) this.say(line);
    return result;
  }
}
