import { Args, Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { BrlError, ExitCode } from '../../lib/core/errors.ts';
import { findProjectDir } from '../../lib/core/paths.ts';
import { buildPackages, type BuildPackagesResult } from '../../lib/packages/build.ts';
import { buildArches } from '../../lib/packages/macros.ts';

export default class BuildPackage extends BrlCommand<BuildPackagesResult> {
  static override description =
    'Build packages into RPMs in a network-less sandbox, dependencies first, reusing outputs whose inputs did not change. With --all, every package that builds for --arch.';
  static override examples = [
    '<%= config.bin %> build package hello',
    '<%= config.bin %> build package --all --jobs 4',
    '<%= config.bin %> build package kernel --arch x86_64 --json',
    '<%= config.bin %> build package --all --arch aarch64',
  ];
  static override strict = false;
  static override args = {
    names: Args.string({ description: 'packages to build (their build dependencies are built too)' }),
  };
  static override flags = {
    all: Flags.boolean({ description: 'build every package in packages-specs/', default: false }),
    arch: Flags.string({
      description: 'target architecture (aarch64 is cross-built on x86_64); each package builds for the arches its package.toml lists',
      options: [...buildArches],
      default: 'x86_64',
      env: 'BRL_ARCH',
    }),
    jobs: Flags.integer({ description: 'builds to run at once (default: brl.toml [build] jobs, else the CPU count)', min: 1, max: 64 }),
    force: Flags.boolean({ description: 'rebuild even when the cache holds outputs for the same inputs', default: false }),
  };

  async run(): Promise<BuildPackagesResult> {
    const { argv, flags } = await this.parse(BuildPackage);
    const names = argv as string[];
    if (flags.all && names.length > 0) {
      throw new BrlError('give package names or --all, not both', { exitCode: ExitCode.usage, code: 'USAGE' });
    }
    if (!flags.all && names.length === 0) {
      throw new BrlError('no packages named', { hint: 'name packages to build, or pass --all', exitCode: ExitCode.usage, code: 'USAGE' });
    }
    const result = await buildPackages(findProjectDir(), {
      names,
      all: flags.all,
      arch: flags.arch as (typeof buildArches)[number],
      ...(flags.jobs === undefined ? {} : { jobs: flags.jobs }),
      force: flags.force,
      progress: this.jsonEnabled() ? 'silent' : 'auto',
    });

    for (const pkg of result.packages) {
      const detail = pkg.status === 'failed' ? '' : ` (${pkg.rpms.length} RPM${pkg.rpms.length === 1 ? '' : 's'})`;
      const why = pkg.status === 'built' && pkg.rebuildReasons ? `; ${pkg.rebuildReasons.join('; ')}` : '';
      this.say(`${pkg.name.padEnd(20)} ${pkg.status}${detail}${why}`);
    }
    const failed = result.packages.filter((pkg) => pkg.status === 'failed');
    for (const pkg of failed) {
      this.say(`\n${pkg.name}: ${pkg.error ?? 'failed'}`);
      if (pkg.logTail && pkg.logTail.length > 0) {
        this.say(`--- last ${pkg.logTail.length} lines of ${pkg.logPath} ---`);
        for (const line of pkg.logTail) this.say(line);
      }
    }
    if (failed.length > 0) {
      if (this.jsonEnabled()) {
        process.exitCode = ExitCode.buildFailed;
        return result;
      }
      throw new BrlError(`${failed.length} of ${result.packages.length} packages failed: ${failed.map((pkg) => pkg.name).join(', ')}`, {
        hint: `full logs are in ${failed[0]?.logPath.replace(/\/[^/]+$/, '/')}`,
        exitCode: ExitCode.buildFailed,
        code: 'BUILD_FAILED',
      });
    }
    if (result.packages.every((pkg) => pkg.status === 'cached')) this.say('\nnothing to rebuild: every package is cached');
    return result;
  }
}
