import { Args, Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { parseS3Location, publishToS3, type PublishResult } from '../../lib/repo/publish.ts';

export default class RepoPublish extends BrlCommand<PublishResult> {
  static override summary = 'Upload a repository to S3: targets first, then metadata, timestamp.json last.';
  static override description = [
    'Each wave finishes before the next starts, so a client never sees metadata that points at files not yet uploaded: targets, then root versions, then targets metadata, then snapshots, then every timestamp.json.',
    'Targets already present with the same size (their names hold their sha256) and metadata with the same ETag are skipped; a published root version is never replaced. Credentials, region and endpoint come from the usual AWS environment (AWS_ENDPOINT_URL_S3 for S3-compatible stores).',
    'Files larger than --part-size go up as multipart uploads, --part-jobs parts at a time across all files (memory: part size × part jobs). If a part still fails after retries, publish stops before any metadata and keeps the upload: a rerun finds it, verifies each stored part against the MD5 of the same bytes of the file, and sends only the missing ones. Pending uploads of a file being published that do not match it are aborted; --abort-orphans also aborts the other pending uploads under the prefix started at least --orphan-age-hours ago.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> repo publish build/repos/default --s3 my-updates-bucket/bottlerocket',
    '<%= config.bin %> repo publish build/repos/default --s3 my-updates-bucket/bottlerocket --part-size 64 --part-jobs 8',
    '<%= config.bin %> repo publish build/repos/default --s3 my-updates-bucket/bottlerocket --abort-orphans --orphan-age-hours 2',
    'AWS_ENDPOINT_URL_S3=http://127.0.0.1:9000 <%= config.bin %> repo publish build/repos/default --s3 lab-bucket --json',
  ];

  static override args = { dir: Args.string({ description: 'repository directory', required: true }) };
  static override flags = {
    s3: Flags.string({ description: 'destination BUCKET[/PREFIX]', required: true }),
    jobs: Flags.integer({ char: 'j', description: 'files uploaded in parallel', default: 8, min: 1, max: 64 }),
    'part-size': Flags.integer({ description: 'multipart part size in MiB; larger files are uploaded in parts', default: 16, min: 5, max: 5120 }),
    'part-jobs': Flags.integer({ description: 'multipart parts uploaded in parallel across all files', default: 4, min: 1, max: 64 }),
    'abort-orphans': Flags.boolean({ description: 'abort pending multipart uploads under the prefix that this publish does not resume', default: false }),
    'orphan-age-hours': Flags.integer({ description: 'with --abort-orphans, only abort uploads started at least this many hours ago', default: 24, min: 0 }),
  };

  async run(): Promise<PublishResult> {
    const { args, flags } = await this.parse(RepoPublish);
    const result = await publishToS3(args.dir, parseS3Location(flags.s3), {
      jobs: flags.jobs,
      partSizeBytes: flags['part-size'] * 1024 * 1024,
      partJobs: flags['part-jobs'],
      abortOrphans: flags['abort-orphans'],
      orphanMinAgeMs: flags['orphan-age-hours'] * 3600 * 1000,
      log: (line) => this.say(line),
    });
    const parts = result.partsUploaded + result.partsReused > 0 ? `; parts: ${result.partsUploaded} sent, ${result.partsReused} kept from an interrupted upload` : '';
    const orphans = result.orphansAborted > 0 ? `; ${result.orphansAborted} pending uploads aborted` : '';
    this.say(`s3://${result.bucket}/${result.prefix}: ${result.uploaded} uploaded, ${result.unchanged} unchanged${parts}${orphans}`);
    return result;
  }
}
