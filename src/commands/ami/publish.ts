import { Flags } from '@oclif/core';
import { AwsClients } from '../../lib/aws/clients.ts';
import { withAwsErrors } from '../../lib/aws/errors.ts';
import { publishAmi, type PublishAmiResult } from '../../lib/aws/publish-ami.ts';
import { linkAmisFile, planAmiPublish } from '../../lib/aws/publish-plan.ts';
import { loadAwsSettings } from '../../lib/aws/settings.ts';
import { uefiDataForPublish } from '../../lib/aws/uefi-data.ts';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { BrlError, ExitCode } from '../../lib/core/errors.ts';

export default class AmiPublish extends BrlCommand<PublishAmiResult> {
  static override summary = "Register a variant's images as an AMI in the base region and copy it to the others.";
  static override description = [
    'Reuses an AMI of the same name when one exists, so a rerun creates nothing and only completes what is missing.',
    'Otherwise uploads the OS (and data) image as EBS snapshots through the EBS direct APIs, skipping empty blocks, registers the AMI, waits until it is available, and copies it to every other region.',
    'A variant whose boot path is signed (uefi-secure-boot) registers with boot mode uefi and UefiData: PK, KEK and db of the key set brl.toml [secure-boot] or BRL_SECURE_BOOT_KEYS names (only the certificates are read), checked against the db certificate the build signed for, or the blob given with --uefi-data.',
    'Writes amis.json (region → id, name, public, launch_permissions). Credentials, region and endpoints come from the AWS SDK chain; AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> point brl at any AWS-compatible endpoint.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> ami publish --variant aws-dev --arch x86_64',
    '<%= config.bin %> ami publish --variant aws-dev --arch aarch64 --regions us-west-2,us-east-1,eu-west-1',
    '<%= config.bin %> ami publish --variant aws-dev --name my-ami --description "test build" --json',
    'BRL_SECURE_BOOT_KEYS=keys/secure-boot <%= config.bin %> ami publish --variant aws-secure --regions us-west-2',
  ];

  static override flags = {
    variant: Flags.string({ description: 'variant whose images to publish (build/images/<arch>-<variant>/latest)', required: true }),
    arch: Flags.string({ char: 'a', description: 'architecture of the images', options: ['x86_64', 'aarch64'], default: 'x86_64' }),
    regions: Flags.string({ description: 'comma-separated regions; the first is the base region (default: [aws] regions in Infra.toml, else AWS_REGION)' }),
    name: Flags.string({ char: 'n', description: 'AMI name (default: bottlerocket-<variant>-<arch>-v<version>-<build>)' }),
    description: Flags.string({ description: 'AMI description' }),
    'os-image': Flags.string({ char: 'o', description: 'OS disk image (raw or .lz4) instead of the built one; needs --name' }),
    'data-image': Flags.string({ char: 'd', description: 'data disk image (raw or .lz4) for the split partition plan' }),
    'uefi-data': Flags.string({ char: 'e', description: 'file with the UEFI variable store (base64 "AMZNUEFI") for a signed boot path, instead of one made from the key set' }),
    'ami-output': Flags.string({ description: 'where to write amis.json (default: <image dir>/<prefix>-amis.json)' }),
    workers: Flags.integer({ description: 'parallel PutSnapshotBlock requests', min: 1, max: 256, default: 64 }),
    'infra-config': Flags.string({ description: 'Infra.toml to read [aws] from (default: the project\'s)' }),
    'no-progress': Flags.boolean({ description: 'do not show upload progress' }),
  };

  async run(): Promise<PublishAmiResult> {
    const { flags } = await this.parse(AmiPublish);
    const settings = await loadAwsSettings(flags);
    if (settings.projectDir === undefined) {
      throw new BrlError('brl ami publish needs a project (for the variant definition)', {
        hint: 'run it inside the project, or set BRL_PROJECT_DIR',
        exitCode: ExitCode.notFound,
        code: 'NO_PROJECT',
      });
    }
    const plan = await planAmiPublish({
      projectDir: settings.projectDir,
      variant: flags.variant,
      arch: flags.arch,
      ...(flags.name === undefined ? {} : { name: flags.name }),
      ...(flags['os-image'] === undefined ? {} : { osImagePath: flags['os-image'] }),
      ...(flags['data-image'] === undefined ? {} : { dataImagePath: flags['data-image'] }),
      ...(flags['ami-output'] === undefined ? {} : { amiOutput: flags['ami-output'] }),
    });
    const uefiData = await uefiDataForPublish({
      projectDir: settings.projectDir,
      variant: flags.variant,
      signed: plan.uefiSecureBoot,
      uefiDataPath: flags['uefi-data'],
      dbCertificateSha256: plan.build?.dbCertificateSha256,
      sourceDateEpoch: plan.build?.sourceDateEpoch,
    });
    const regions = await settings.regions();
    const clients = new AwsClients({ maxSockets: flags.workers });
    let result: PublishAmiResult;
    try {
      result = await withAwsErrors(() => publishAmi({
        clients,
        regions,
        name: plan.name,
        description: flags.description,
        arch: flags.arch,
        osImage: plan.osImage,
        dataImage: plan.dataImage,
        sizes: plan.sizes,
        uefiSecureBoot: plan.uefiSecureBoot,
        uefiData: uefiData?.value,
        amiSpec: plan.amiSpec,
        regionRoles: settings.infra.regionRoles,
        amisPath: plan.amisPath,
        upload: { workers: flags.workers },
        progress: this.jsonEnabled() || flags['no-progress'] ? 'silent' : 'auto',
      }));
    } finally {
      clients.destroy();
    }
    if (plan.amisLinkPath) await linkAmisFile(plan.amisLinkPath, plan.amisPath);

    for (const region of result.regions) {
      this.say(`${region.region.padEnd(16)} ${(region.id ?? '-').padEnd(22)} ${region.outcome}${region.error ? `: ${region.error}` : ''}`);
    }
    for (const upload of result.uploads) {
      this.say(`uploaded ${upload.snapshotId}: ${upload.blocksUploaded} blocks (${(upload.bytesUploaded / 2 ** 20).toFixed(1)} MiB), ${upload.blocksSkipped} empty blocks skipped, ${upload.seconds.toFixed(1)} s`);
    }
    this.say(`wrote ${result.amisPath}`);
    if (result.failedRegions.length > 0) {
      // amis.json already lists what succeeded; a rerun completes only the failed regions.
      process.exitCode = ExitCode.failure;
      this.logToStderr(`Some AMIs failed to copy: ${result.failedRegions.join(', ')}; rerun the same command to complete them`);
    }
    return result;
  }
}
