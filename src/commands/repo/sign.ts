import { Args, Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { BrlError, ExitCode } from '../../lib/core/errors.ts';
import { openSigners, repoContext } from '../../lib/repo/context.ts';
import { infraConfigFlag, keyFlag, repoFlag, rootRoleFlag } from '../../lib/repo/flags.ts';
import { findMetadataDirs, repoLayout } from '../../lib/repo/layout.ts';
import { signingTrustRoot, signRepository, type SignResult } from '../../lib/repo/maintain.ts';
import { resolveRootPath } from '../../lib/repo/root-file.ts';
import { nowSeconds } from '../../lib/tuf/time.ts';

export default class RepoSign extends BrlCommand<{ repositories: (SignResult & { variant: string; arch: string; trustedRoot: string })[] }> {
  static override summary = 'Sign (or re-sign) a built repository\'s targets, snapshot and timestamp.';
  static override description = [
    'Signs every <variant>/<arch> repository in DIR (or the one chosen with --variant/--arch) without changing content or versions, then checks the whole chain against the trusted root.',
    'Keys that root does not list, and key sets that cannot meet a role\'s threshold, are refused before anything is signed. Building (possibly on an untrusted machine, --unsigned) and signing (on a trusted one, or with KMS) are separate steps.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> repo sign build/repos/default --key keys/default.pem',
    '<%= config.bin %> repo sign build/repos/default --key aws-kms:///alias/bottlerocket-release',
    '<%= config.bin %> repo sign build/repos/default --variant dev --arch x86_64 --repo default',
  ];

  static override args = { dir: Args.string({ description: 'repository directory (holds targets/ and <variant>/<arch>/)', required: true }) };
  static override flags = {
    repo: repoFlag,
    'infra-config-path': infraConfigFlag,
    'root-role-path': rootRoleFlag,
    variant: Flags.string({ description: 'sign only this variant' }),
    arch: Flags.string({ description: 'sign only this architecture' }),
    key: keyFlag,
  };

  async run(): Promise<{ repositories: (SignResult & { variant: string; arch: string; trustedRoot: string })[] }> {
    const { args, flags } = await this.parse(RepoSign);
    const context = await repoContext({ repo: flags.repo, infraConfigPath: flags['infra-config-path'] });
    const targets = (await findMetadataDirs(args.dir)).filter((dir) => (!flags.variant || dir.variant === flags.variant) && (!flags.arch || dir.arch === flags.arch));
    if (targets.length === 0) {
      throw new BrlError(`${args.dir} holds no repository${flags.variant ? ` for ${flags.variant}` : ''}`, {
        hint: 'build one first with brl repo build --unsigned, or check the directory',
        exitCode: ExitCode.notFound,
        code: 'NO_REPOSITORY',
      });
    }
    const signers = await openSigners(flags.key, context.config);
    const configuredRoot = await resolveRootPath(context.config, { projectDir: context.projectDir, ...(flags['root-role-path'] ? { rootRolePath: flags['root-role-path'] } : {}) });
    const repositories = [];
    for (const { variant, arch } of targets) {
      const layout = repoLayout(args.dir, variant, arch);
      const trust = await signingTrustRoot(layout.metadataDir, configuredRoot);
      if (trust.source !== configuredRoot) this.say(`note: ${configuredRoot} not found; trusting the repository's own ${trust.source}`);
      const result = await signRepository(layout, trust, signers, nowSeconds());
      this.say(`${variant}/${arch}: signed targets v${result.versions.targets}, snapshot v${result.versions.snapshot}, timestamp v${result.versions.timestamp}; verified against root v${result.rootVersion}`);
      repositories.push({ ...result, variant, arch, trustedRoot: trust.source });
    }
    return { repositories };
  }
}
