import { Args, Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { findProjectDir } from '../../lib/core/paths.ts';
import { buildVariant, type VariantBuildResult } from '../../lib/variant/build.ts';

export default class BuildVariant extends BrlCommand<VariantBuildResult> {
  static override description =
    'Build a variant: its packages, a reproducible A/B disk image with a dm-verity root, the update images, inventory, SBOMs and a build manifest.';
  static override examples = [
    '<%= config.bin %> build variant dev',
    '<%= config.bin %> build variant test-minimal --arch x86_64 --json',
    'SOURCE_DATE_EPOCH=1700000000 <%= config.bin %> build variant dev',
  ];
  static override args = {
    name: Args.string({ description: 'variant to build (a directory under variants/)', required: true }),
  };
  static override flags = {
    arch: Flags.string({ description: 'target architecture (x86_64 or aarch64)', default: 'x86_64', env: 'BRL_ARCH' }),
    jobs: Flags.integer({ description: 'package builds to run at once (default: brl.toml [build] jobs, else the CPU count)', min: 1, max: 64 }),
  };

  async run(): Promise<VariantBuildResult> {
    const { args, flags } = await this.parse(BuildVariant);
    const result = await buildVariant(findProjectDir(), args.name, {
      arch: flags.arch,
      ...(flags.jobs === undefined ? {} : { jobs: flags.jobs }),
      progress: this.jsonEnabled() ? 'silent' : 'auto',
      onWarning: (message) => this.jsonEnabled() || this.warn(message),
    });
    this.say(`\n${result.variant} ${result.version} (${result.arch}, build ${result.buildId}) in ${(result.durationMs / 1000).toFixed(1)} s`);
    this.say(`root hash ${result.verity.rootHash} (${result.rootFilesystem}, ${result.verity.dataBlocks} blocks); ${result.packages.length} packages`);
    this.say(result.bootSigning.signed
      ? `Secure Boot: signed for db certificate ${result.bootSigning.dbCertificateSha256} and GRUB key ${result.bootSigning.grubKeyFingerprint}`
      : 'Secure Boot: unsigned boot path (development image; set uefi-secure-boot to sign)');
    const { selinux } = result;
    this.say(selinux.enforcing
      ? `SELinux: enforcing, policy ${selinux.policy}`
      : `SELinux: off (the kernel starts ${selinux.lsm ?? (selinux.policy === undefined ? 'no major LSM' : 'an LSM brl cannot tell')})`);
    const width = Math.max(...result.artifacts.map((artifact) => artifact.file.length));
    for (const artifact of result.artifacts) {
      this.say(`  ${artifact.file.padEnd(width)}  ${formatBytes(artifact.sizeBytes).padStart(10)}`);
    }
    this.say(`output: ${result.outputDir}`);
    return result;
  }
}

function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}
