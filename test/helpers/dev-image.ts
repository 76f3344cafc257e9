// The dev image built under a test's own build id, so the user's `npm run sample` output and its
// `latest` link are as they were once the test file ends.
import { execFileSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, renameSync, rmSync, symlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { buildVariant, type VariantBuildResult } from '../../src/lib/variant/build.ts';
import { buildManifestName, type BuildManifest } from '../../src/lib/variant/build-manifest.ts';
import type { Architecture } from '../../src/lib/variant/definition.ts';
import { repoDir } from './cli.ts';


function linkTarget(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Registers the clean-up of `<version>-<buildId>` and of the `latest` link after the file's tests, and
 * returns a function that builds dev under that build id (with extra environment, e.g.
 * PUBLISH_REPO_ROOT_JSON).
 */
export function devBuilder(buildId: string, arch: Architecture = 'x86_64'): (extraEnv?: NodeJS.ProcessEnv) => Promise<VariantBuildResult> {
  const imagesDir = join(repoDir, 'build', 'images', `${arch}-dev`);
  const latestLink = join(imagesDir, 'latest');
  const previousLatest = linkTarget(latestLink);
  test.after.always(() => {
    // Every version built under this id (BUILDSYS_VERSION_IMAGE may have set another).
    for (const entry of existsSync(imagesDir) ? readdirSync(imagesDir) : []) if (entry.endsWith(`-${buildId}`)) rmSync(join(imagesDir, entry), { recursive: true, force: true });
    if (previousLatest === undefined) {
      rmSync(latestLink, { force: true });
    } else if (linkTarget(latestLink) !== previousLatest) {
      rmSync(`${latestLink}.restore`, { force: true });
      symlinkSync(previousLatest, `${latestLink}.restore`);
      renameSync(`${latestLink}.restore`, latestLink);
    }
  });
  return (extraEnv = {}) => buildVariant(repoDir, 'dev', { arch, progress: 'silent', env: { ...process.env, ...extraEnv, BRL_BUILD_ID: buildId } });
}

/** The OS disk (`.img.lz4`) of a build. */
export function osDiskOf(result: VariantBuildResult): string {
  const disk = result.artifacts.find((artifact) => artifact.kind === 'os-disk');
  if (disk === undefined) throw new Error('the build wrote no OS disk');
  return join(result.outputDir, disk.file);
}

/**
 * A copy of the build's OS disk, raw, with one byte of ROOT-A's ext4 superblock flipped (a block
 * every mount reads), next to a copy of the build manifest so brl vm run still sees the variant's
 * features. Returns the disk's path.
 */
export async function tamperedOsDisk(result: VariantBuildResult, dir: string): Promise<string> {
  const manifest = JSON.parse(readFileSync(join(result.outputDir, buildManifestName), 'utf8')) as BuildManifest;
  copyFileSync(join(result.outputDir, buildManifestName), join(dir, buildManifestName));
  const disk = join(dir, manifest.disks.os.artifact);
  execFileSync('lz4', ['-dqf', osDiskOf(result), disk]);
  const rootA = manifest.disks.os.partitions.find((partition) => partition.key === 'ROOT-A');
  if (rootA === undefined) throw new Error('the build manifest has no ROOT-A');
  const offset = rootA.startMiB * 1024 * 1024 + 1024 + 0x78;
  const fd = openSync(disk, 'r+');
  const byte = Buffer.alloc(1);
  readSync(fd, byte, 0, 1, offset);
  writeSync(fd, Buffer.from([(byte[0] as number) ^ 0xff]), 0, 1, offset);
  closeSync(fd);
  return disk;
}
