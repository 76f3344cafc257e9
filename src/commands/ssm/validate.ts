import { Flags } from '@oclif/core';
import { AwsClients } from '../../lib/aws/clients.ts';
import { loadAwsSettings } from '../../lib/aws/settings.ts';
import { parameterPlanInputs, ssmTemplateFlags } from '../../lib/aws/ssm-cli.ts';
import { validateSsmParameters, type ValidateSsmResult } from '../../lib/aws/validate-ssm.ts';
import { validationFailure, validationTable } from '../../lib/aws/validation.ts';
import { BrlCommand } from '../../lib/cli/base-command.ts';

export default class SsmValidate extends BrlCommand<ValidateSsmResult> {
  static override summary = 'Check that SSM holds the parameters brl ssm publish would set, in every region.';
  static override description = [
    'Renders the parameter templates exactly as brl ssm publish does (amis.json, --version, --template-path, the prefix) and reads every parameter in every region: each must exist and hold the rendered value.',
    'Regions are checked 4 at a time (--jobs). A changed or missing parameter, or a region that cannot be read, makes the command exit non-zero naming the region and parameter; with --json the full result is printed and the exit code is still non-zero.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> ssm validate --variant aws-dev --arch x86_64 --ssm-prefix /my-org/brl',
    '<%= config.bin %> ssm validate --variant aws-dev --ami-input amis.json --version 1.0.0-abcdef12 --regions us-west-2 --json',
  ];

  static override flags = {
    ...ssmTemplateFlags,
    'ami-input': Flags.string({ description: "amis.json from brl ami publish (default: the latest build's)" }),
    version: Flags.string({ description: "image version for {image_version}, e.g. 1.0.0-abcdef12 (default: the latest build's)" }),
    jobs: Flags.integer({ char: 'j', description: 'regions validated in parallel', default: 4, min: 1, max: 32 }),
  };

  async run(): Promise<ValidateSsmResult> {
    const { flags } = await this.parse(SsmValidate);
    const settings = await loadAwsSettings(flags);
    const inputs = await parameterPlanInputs(settings, flags);
    const clients = new AwsClients();
    let result: ValidateSsmResult;
    try {
      result = await validateSsmParameters({
        clients,
        ...inputs,
        concurrency: flags.jobs,
      });
    } finally {
      clients.destroy();
    }
    for (const line of validationTable(result, 'PARAMETER')) this.say(line);
    const failure = validationFailure('SSM parameters', result, 'rerun brl ssm publish (with --allow-clobber to restore changed values)');
    if (failure && !this.jsonEnabled()) throw failure;
    // --json prints the whole result, every mismatch in it, and still exits non-zero.
    if (failure) process.exitCode = failure.exitCode;
    return result;
  }
}
