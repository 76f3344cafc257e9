import { Args, Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { BrlError, ExitCode } from '../../lib/core/errors.ts';
import { findProjectDir } from '../../lib/core/paths.ts';
import { lockPackages, type PackageLockResult } from '../../lib/debian/lock.ts';
import { loadFetchConfig } from '../../lib/fetch/index.ts';
import { hasContainerImage, listContainerNames, loadContainerImage } from '../../lib/oci/definition.ts';
import { listPackageNames, loadAllPackages, loadPackage } from '../../lib/packages/manifest.ts';

export interface DebsLockResult {
  check: boolean;
  packages: PackageLockResult[];
}

export default class DebsLock extends BrlCommand<DebsLockResult> {
  static override summary = 'Pin the Debian packages a package or host-container image is made of: resolve its [debian] roots and write debs.lock.';
  static override description = [
    'For each package whose package.toml has a [debian] table (packages-specs/NAME/), and each host-container image (host-containers/NAME/image.toml), resolves the roots\' Depends and Pre-Depends closure against the apt indices of this machine for each Debian architecture of the package\'s arches (amd64 for x86_64, arm64 for aarch64; a foreign one must be enabled with dpkg --add-architecture, which npm run host-tools does) (candidate = highest version; excluded names end the walk), downloads the debs the lock does not yet pin (apt checks them against the signed index) into the lookaside cache, and writes debs.lock with name, version, sha256 and sha512 of each.',
    'With --check nothing is written or downloaded: the command fails when a lock is missing or differs from what the indices give now.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> debs lock systemd',
    '<%= config.bin %> debs lock admin control',
    '<%= config.bin %> debs lock',
    '<%= config.bin %> debs lock --check --json',
  ];

  static override strict = false;
  static override args = {
    package: Args.string({ description: 'packages or host-container images to lock (every package with a [debian] table and every image when none are named); more may follow' }),
  };

  static override flags = {
    check: Flags.boolean({ description: 'verify the locks are current; write and download nothing' }),
  };

  async run(): Promise<DebsLockResult> {
    const { flags, argv } = await this.parse(DebsLock);
    const names = [...new Set(argv as string[])];
    const projectDir = findProjectDir();
    const options = { allowStaleLock: true };
    const packageNames = new Set(await listPackageNames(projectDir));
    const unknown = names.filter((name) => !packageNames.has(name) && !hasContainerImage(projectDir, name));
    if (unknown.length > 0) {
      const images = await listContainerNames(projectDir);
      throw new BrlError(`${unknown.join(', ')}: neither a package (packages-specs/NAME/) nor a host-container image (host-containers/NAME/image.toml)`, {
        hint: `packages: ${[...packageNames].join(', ') || 'none'}; images: ${images.join(', ') || 'none'}`,
        exitCode: ExitCode.notFound,
        code: 'UNKNOWN_PACKAGE',
      });
    }
    // A name that is not a package but has host-containers/NAME/image.toml is an image.
    const imageNames = names.length === 0 ? await listContainerNames(projectDir) : names.filter((name) => !packageNames.has(name) && hasContainerImage(projectDir, name));
    const packageDefinitions = names.length === 0 ? await loadAllPackages(projectDir, options) : await Promise.all(names.filter((name) => !imageNames.includes(name)).map((name) => loadPackage(projectDir, name, options)));
    const images = await Promise.all(imageNames.map((name) => loadContainerImage(projectDir, name, options)));
    const definitions = [...packageDefinitions, ...images];
    const without = definitions.filter((definition) => definition.debian === undefined && names.includes(definition.name));
    if (without.length > 0) {
      throw new BrlError(`package ${without.map((definition) => definition.name).join(', ')} has no [debian] table in package.toml: nothing to lock`, {
        exitCode: ExitCode.badInput,
        code: 'NO_DEBIAN_TABLE',
      });
    }
    const packages = await lockPackages(definitions, { check: flags.check, fetch: await loadFetchConfig(projectDir), log: (line) => this.say(line) });
    for (const result of packages) {
      const changes = result.changes.map((change) => `${change.name} ${change.from ?? '(new)'} → ${change.to ?? '(gone)'}`);
      const state = result.current ? 'current' : flags.check ? 'OUT OF DATE' : 'written';
      this.say(`${result.package}: ${result.debs} debs, ${(result.size / 1024 / 1024).toFixed(1)} MiB, ${state} (${result.lockPath})`);
      for (const line of changes) this.say(`  ${line}`);
      for (const name of result.unusedExcludes) this.warn(`${result.package}: exclude "${name}" is not needed by any package in the closure; remove it from [debian.exclude]`);
    }
    const stale = packages.filter((result) => !result.current);
    if (flags.check && stale.length > 0) {
      throw new BrlError(`debs.lock is not current for ${stale.map((result) => result.package).join(', ')}`, {
        hint: `run \`brl debs lock ${stale.map((result) => result.package).join(' ')}\` and commit the result`,
        exitCode: ExitCode.badInput,
        code: 'DEB_LOCK_STALE',
      });
    }
    return { check: flags.check, packages };
  }
}
