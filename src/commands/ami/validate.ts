import { Flags } from '@oclif/core';
import { readAmisFile } from '../../lib/aws/amis-file.ts';
import { AwsClients } from '../../lib/aws/clients.ts';
import { splitList } from '../../lib/aws/infra.ts';
import { latestAmisFile } from '../../lib/aws/publish-plan.ts';
import { loadAwsSettings } from '../../lib/aws/settings.ts';
import { expectedImage, validateAmis, type ValidateAmiResult } from '../../lib/aws/validate-ami.ts';
import { validationFailure, validationTable } from '../../lib/aws/validation.ts';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { BrlError, ExitCode } from '../../lib/core/errors.ts';

export default class AmiValidate extends BrlCommand<ValidateAmiResult> {
  static override summary = 'Check that the AMIs in amis.json exist in every region as published and shared.';
  static override description = [
    "Describes each region's AMI and compares it with amis.json and the variant: state available, name, architecture, boot mode and ENA support (from the variant's definition and amispec.toml; not checked outside a project), for a uefi-secure-boot variant the PK, KEK and db certificates in the AMI's UefiData against the key set brl.toml [secure-boot] or BRL_SECURE_BOOT_KEYS names, public, launch permissions, and the snapshots' create-volume permissions (the accounts and groups of the launch permissions).",
    'Regions are checked 4 at a time (--jobs). Any mismatch, or a region that cannot be read, makes the command exit non-zero naming the region and field; with --json the full result is printed and the exit code is still non-zero.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> ami validate --variant aws-dev --arch x86_64',
    '<%= config.bin %> ami validate --variant aws-dev --ami-input amis.json --regions us-west-2,us-east-1 --json',
  ];

  static override flags = {
    variant: Flags.string({ description: 'variant the AMIs were published from', required: true }),
    arch: Flags.string({ char: 'a', description: 'architecture of the AMIs', options: ['x86_64', 'aarch64'], default: 'x86_64' }),
    'ami-input': Flags.string({ description: "amis.json from brl ami publish (default: the latest build's)" }),
    regions: Flags.string({ description: 'comma-separated subset of the regions in amis.json (default: all)' }),
    jobs: Flags.integer({ char: 'j', description: 'regions validated in parallel', default: 4, min: 1, max: 32 }),
  };

  async run(): Promise<ValidateAmiResult> {
    const { flags } = await this.parse(AmiValidate);
    const settings = await loadAwsSettings({});
    const amisPath = flags['ami-input'] ?? (settings.projectDir === undefined ? undefined : (await latestAmisFile(settings.projectDir, flags.variant, flags.arch)).amisPath);
    if (amisPath === undefined) throw new BrlError('outside a project, --ami-input is required', { exitCode: ExitCode.usage, code: 'MISSING_FLAGS' });
    const amis = await readAmisFile(amisPath);
    const expected = await expectedImage(settings.projectDir, flags.variant, flags.arch);
    const clients = new AwsClients();
    let result: ValidateAmiResult;
    try {
      result = await validateAmis({ clients, amis, amisPath, regions: splitList(flags.regions), expected, concurrency: flags.jobs });
    } finally {
      clients.destroy();
    }
    for (const line of validationTable(result, 'FIELD')) this.say(line);
    const failure = validationFailure('AMIs', result, 'compare with aws ec2 describe-images; brl ami publish and brl ami grant|revoke restore what amis.json records');
    if (failure && !this.jsonEnabled()) throw failure;
    // --json prints the whole result, every mismatch in it, and still exits non-zero.
    if (failure) process.exitCode = failure.exitCode;
    return result;
  }
}
