import { Args, Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { parseS3Location, publishToS3, type PublishResult } from '../../lib/repo/publish.ts';

export default class RepoPublish extends BrlCommand<PublishResult> {
  static override summary = 'Upload a repository to S3: targets first, then metadata, timestamp.json last.';
  static override description = [
    'Each wave finishes before the next starts, so a client never sees metadata that points at files not yet uploaded: targets, then root versions, then targets metadata, then snapshots, then every timestamp.json.',
    'Targets already present with the same size (their names hold their sha256) and metadata with the same MD5 are skipped; a published root version is never replaced. Credentials, region and endpoint come from the usual AWS environment (AWS_ENDPOINT_URL_S3 for S3-compatible stores).',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> repo publish build/repos/default --s3 my-updates-bucket/bottlerocket',
    'AWS_ENDPOINT_URL_S3=http://127.0.0.1:9000 <%= config.bin %> repo publish build/repos/default --s3 lab-bucket',
  ];

  static override args = { dir: Args.string({ description: 'repository directory', required: true }) };
  static override flags = {
    s3: Flags.string({ description: 'destination BUCKET[/PREFIX]', required: true }),
    jobs: Flags.integer({ char: 'j', description: 'uploads in parallel', default: 8, min: 1, max: 64 }),
  };

  async run(): Promise<PublishResult> {
    const { args, flags } = await this.parse(RepoPublish);
    const result = await publishToS3(args.dir, parseS3Location(flags.s3), { jobs: flags.jobs, log: (line) => this.say(line) });
    this.say(`s3://${result.bucket}/${result.prefix}: ${result.uploaded} uploaded, ${result.unchanged} unchanged`);
    return result;
  }
}
