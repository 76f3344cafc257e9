import { Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { defaultOutdir, openSigners, repoContext, repoReader, trustedRoot } from '../../lib/repo/context.ts';
import { existingRepoArgs, expirationPolicyFlag, keyFlag, repoSelectionFlags } from '../../lib/repo/flags.ts';
import { repoLayout } from '../../lib/repo/layout.ts';
import { configuredTrustRoot, refreshRepository } from '../../lib/repo/maintain.ts';
import { loadExpirationPolicy } from '../../lib/repo/policy.ts';
import { nowSeconds } from '../../lib/tuf/time.ts';

type RefreshResult = Awaited<ReturnType<typeof refreshRepository>>;

export default class RepoRefresh extends BrlCommand<RefreshResult> {
  static override summary = 'Re-sign targets, snapshot and timestamp with new versions and expirations (metadata only).';
  static override description = [
    'The one-week timestamp of the default policy makes a scheduled refresh mandatory. Reads the repository in DIR (or the published one from metadata_base_url) and writes the refreshed metadata to --outdir (default: DIR, or build/repos/<repo>).',
    'A repository whose metadata already expired is refused unless --unsafe-refresh.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> repo refresh build/repos/default --variant dev --key keys/default.pem',
    '<%= config.bin %> repo refresh --variant aws-k8s-1.31 --repo default --outdir build/repos/refresh',
  ];

  static override args = existingRepoArgs;
  static override flags = {
    ...repoSelectionFlags,
    'expiration-policy': expirationPolicyFlag,
    outdir: Flags.string({ description: 'where to write the refreshed metadata (default: DIR, else build/repos/<repo>)' }),
    key: keyFlag,
    'unsafe-refresh': Flags.boolean({ description: 'refresh even though metadata already expired' }),
  };

  async run(): Promise<RefreshResult> {
    const { args, flags } = await this.parse(RepoRefresh);
    const context = await repoContext({ repo: flags.repo, infraConfigPath: flags['infra-config-path'] });
    const trust = await configuredTrustRoot((await trustedRoot(context, flags['root-role-path'])).path);
    const reader = repoReader(context, { dir: args.dir, variant: flags.variant, arch: flags.arch });
    const outdir = flags.outdir ?? args.dir ?? defaultOutdir(context.projectDir, flags.repo);
    const layout = repoLayout(outdir, flags.variant, flags.arch);
    const result = await refreshRepository(reader, layout.metadataDir, trust, await openSigners(flags.key, context.config), {
      now: nowSeconds(),
      policy: await loadExpirationPolicy(flags['expiration-policy']),
      unsafe: flags['unsafe-refresh'],
      ...(args.dir && outdir === args.dir ? { targetsDir: layout.targetsDir } : {}),
    });
    this.say(`refreshed ${result.metadataDir}: version ${result.versions.timestamp}, timestamp expires ${result.expires.timestamp}, targets ${result.expires.targets}`);
    return result;
  }
}
