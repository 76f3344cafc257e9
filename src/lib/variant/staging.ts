// Installs the resolved RPMs into a staging root with rpm (no scriptlets, private database).
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { installRpms } from '../packages/rpm.ts';
import type { RpmPackage } from '../packages/rpm.ts';

/** Inside the staging root; removed after the install, like upstream removes the rpm database. */
const dbDirName = '.brl-rpmdb';

/**
 * Installs `packages` into `stagingDir` and returns the tree the root filesystem is made from:
 * the SDK's `/<arch>-bottlerocket-linux-gnu/sys-root` when packages use it, else the root itself.
 */
export async function installPackages(stagingDir: string, packages: readonly RpmPackage[], arch: string): Promise<string> {
  try {
    await installRpms(stagingDir, packages.map((pkg) => pkg.path), `/${dbDirName}`);
  } catch (error) {
    const stderr = ((error as { stderr?: string }).stderr ?? String(error))
      .split('\n').filter((line) => line !== '' && !/^rpm: (RPM should not be used|However assuming)/.test(line)).join('; ');
    throw new BrlError(`installing ${packages.length} packages into the staging root failed: ${stderr}`, {
      hint: 'a package payload is corrupt or two packages install conflicting files; rebuild the packages named above',
      exitCode: ExitCode.buildFailed,
      code: 'INSTALL_FAILED',
    });
  }
  await rm(join(stagingDir, dbDirName), { recursive: true, force: true });
  await rm(join(stagingDir, 'var', 'lib', 'rpm'), { recursive: true, force: true });
  const sysroot = join(stagingDir, `${arch}-bottlerocket-linux-gnu`, 'sys-root');
  return existsSync(sysroot) ? sysroot : stagingDir;
}
