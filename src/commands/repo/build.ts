import { Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import type { BuildResult } from '../../lib/repo/build.ts';
import { expirationPolicyFlag, keyFlag, repoSelectionFlags } from '../../lib/repo/flags.ts';
import { builtinWavePolicies } from '../../lib/repo/policy.ts';
import { buildRelease } from '../../lib/repo/release.ts';

export default class RepoBuild extends BrlCommand<BuildResult & { rootPath: string; outdir: string }> {
  static override summary = 'Add a variant build to a TUF update repository.';
  static override description = [
    'Loads the repository in --outdir (or, when Infra.toml sets metadata_base_url and targets_url, the published one), adds the build\'s boot, root and hash images and its manifest.json entry (max_version carried over, waves from the policy, migrations from Release.toml), and writes new targets, snapshot and timestamp metadata with unix-time versions.',
    'Targets are stored once as targets/<sha256>.<name> and written before any metadata; metadata goes to <outdir>/<variant>/<arch>/. A different file under an existing target name is refused. Building the same images again is a re-release: the update stays, its waves are recomputed from --wave-policy and --release-start-time and its migrations from Release.toml (e.g. to move a rollout), and the metadata is signed anew.',
    'Signs with --key or the configured signing_keys; --unsigned stages the repository for `brl repo sign` on a trusted machine.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> repo build --variant dev --arch x86_64 --key keys/default.pem',
    '<%= config.bin %> repo build --variant aws-k8s-1.31 --repo default --wave-policy accelerated --release-start-time "in 2 hours"',
    '<%= config.bin %> repo build --variant dev --unsigned --outdir build/repos/staging',
  ];

  static override flags = {
    ...repoSelectionFlags,
    outdir: Flags.string({ description: 'repository directory (default: build/repos/<repo>)' }),
    'images-dir': Flags.string({ description: 'variant build output (default: build/images/<arch>-<variant>/latest)' }),
    version: Flags.string({ description: 'image version to add (default: version in Release.toml)' }),
    'release-start-time': Flags.string({ description: 'when wave 0 starts and expirations count from: RFC 3339 or "in N hours" (default: now)', env: 'RELEASE_START_TIME' }),
    'wave-policy': Flags.string({ description: `built-in policy (${Object.keys(builtinWavePolicies).join(', ')}) or a [[waves]] TOML file`, default: 'default' }),
    'expiration-policy': expirationPolicyFlag,
    'link-target': Flags.string({ description: 'extra file to publish as a target (repeatable)', multiple: true }),
    'copy-target': Flags.string({ description: 'extra file to copy in as a target (repeatable)', multiple: true }),
    sign: Flags.boolean({ description: 'sign now (the default when a key is configured or given)', exclusive: ['unsigned'] }),
    unsigned: Flags.boolean({ description: 'stage unsigned metadata for brl repo sign', exclusive: ['sign'] }),
    key: keyFlag,
  };

  async run(): Promise<BuildResult & { rootPath: string; outdir: string }> {
    const { flags } = await this.parse(RepoBuild);
    const result = await buildRelease({
      variant: flags.variant,
      arch: flags.arch,
      repo: flags.repo,
      wavePolicy: flags['wave-policy'],
      ...(flags['infra-config-path'] ? { infraConfigPath: flags['infra-config-path'] } : {}),
      ...(flags['root-role-path'] ? { rootRolePath: flags['root-role-path'] } : {}),
      ...(flags.outdir ? { outdir: flags.outdir } : {}),
      ...(flags['images-dir'] ? { imagesDir: flags['images-dir'] } : {}),
      ...(flags.version ? { version: flags.version } : {}),
      ...(flags['release-start-time'] ? { releaseStartTime: flags['release-start-time'] } : {}),
      ...(flags['expiration-policy'] ? { expirationPolicyPath: flags['expiration-policy'] } : {}),
      ...(flags['link-target'] ? { linkTargets: flags['link-target'] } : {}),
      ...(flags['copy-target'] ? { copyTargets: flags['copy-target'] } : {}),
      ...(flags.sign ? { sign: true } : flags.unsigned ? { sign: false } : {}),
      ...(flags.key ? { keys: flags.key } : {}),
      progress: this.jsonEnabled() ? 'silent' : 'auto',
    });
    if (result.extendedFrom) this.say(`extended the repository at ${result.extendedFrom}`);
    const added = result.targets.filter((target) => target.written).length;
    this.say(`${result.targets.length} target file(s) with manifest.json: ${added} added, ${result.targets.length - added} already present`);
    this.say(`${result.variant} ${result.arch} ${result.version}: ${result.targets.length} target(s), metadata version ${result.versions.timestamp}, timestamp expires ${result.expires.timestamp}`);
    this.say(result.signed ? `signed; serve it with: brl repo serve ${result.outdir}` : `unsigned; sign it with: brl repo sign ${result.outdir}`);
    return result;
  }
}
