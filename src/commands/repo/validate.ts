import { Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { repoContext, repoReader, trustedRoot } from '../../lib/repo/context.ts';
import { existingRepoArgs, repoSelectionFlags } from '../../lib/repo/flags.ts';
import { validateRepository, type ValidateResult } from '../../lib/repo/validate.ts';
import { nowSeconds } from '../../lib/tuf/time.ts';

export default class RepoValidate extends BrlCommand<ValidateResult> {
  static override summary = 'Check a repository as a client would: signatures, thresholds, versions, hashes, expiry.';
  static override description = [
    'Walks the root chain from the trusted root (each new root signed by a threshold of the old and new root keys), then timestamp, snapshot and targets: signatures, the versions, lengths and hashes each role pins, and expiry. In a local directory a timestamp or snapshot pinning older metadata than the newest present is a rollback.',
    'With --targets every target is read (16 at a time) and its length and sha256 checked.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> repo validate build/repos/default --variant dev',
    '<%= config.bin %> repo validate --variant aws-k8s-1.31 --repo default --targets',
  ];

  static override args = existingRepoArgs;
  static override flags = {
    ...repoSelectionFlags,
    targets: Flags.boolean({ description: 'also download and verify every target' }),
    jobs: Flags.integer({ char: 'j', description: 'targets checked in parallel', default: 16, min: 1, max: 64 }),
  };

  async run(): Promise<ValidateResult> {
    const { args, flags } = await this.parse(RepoValidate);
    const context = await repoContext({ repo: flags.repo, infraConfigPath: flags['infra-config-path'] });
    const { root } = await trustedRoot(context, flags['root-role-path']);
    const reader = repoReader(context, { dir: args.dir, variant: flags.variant, arch: flags.arch });
    const result = await validateRepository({ reader, trustedRoot: root, now: nowSeconds(), checkTargets: flags.targets, jobs: flags.jobs });
    this.say(`${result.location}: valid (root v${result.rootVersion}, targets v${result.versions.targets}, snapshot v${result.versions.snapshot}, timestamp v${result.versions.timestamp})`);
    this.say(`${result.targetCount} target(s)${flags.targets ? `, ${result.targetsChecked} verified` : ''}; timestamp expires ${result.expires.timestamp}`);
    return result;
  }
}
