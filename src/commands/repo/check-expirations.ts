import { Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { repoContext, repoReader, trustedRoot } from '../../lib/repo/context.ts';
import { existingRepoArgs, repoSelectionFlags } from '../../lib/repo/flags.ts';
import { checkExpirations, type RoleExpiry } from '../../lib/repo/maintain.ts';
import { nowSeconds, parseTimeSpec } from '../../lib/tuf/time.ts';

export default class RepoCheckExpirations extends BrlCommand<{ limit: string; roles: RoleExpiry[] }> {
  static override summary = 'Fail when any role (root included) expires before a limit.';
  static override description = 'Loads the repository without enforcing expiry (signatures still checked) and lists when each role expires; exits 6 if any expires at or before the limit. Run it on a schedule, next to brl repo refresh.';
  static override examples = [
    '<%= config.bin %> repo check-expirations build/repos/default --variant dev --within "3 days"',
    '<%= config.bin %> repo check-expirations --variant aws-k8s-1.31 --within 2026-12-24T00:00:00Z',
  ];

  static override args = existingRepoArgs;
  static override flags = {
    ...repoSelectionFlags,
    within: Flags.string({ description: 'limit: "N days" from now, or an RFC 3339 time', default: '3 days', aliases: ['expiration-limit'] }),
  };

  async run(): Promise<{ limit: string; roles: RoleExpiry[] }> {
    const { args, flags } = await this.parse(RepoCheckExpirations);
    const context = await repoContext({ repo: flags.repo, infraConfigPath: flags['infra-config-path'] });
    const { root } = await trustedRoot(context, flags['root-role-path']);
    const now = nowSeconds();
    const reader = repoReader(context, { dir: args.dir, variant: flags.variant, arch: flags.arch });
    const result = await checkExpirations(reader, root, now, parseTimeSpec(flags.within, now, '--within'));
    for (const role of result.roles) this.say(`${role.role.padEnd(9)} v${role.version} expires ${role.expires}`);
    this.say(`nothing expires before ${result.limit}`);
    return result;
  }
}
