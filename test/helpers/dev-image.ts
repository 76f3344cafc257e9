// The dev image built under a test's own build id, so the user's `npm run sample` output and its
// `latest` link are as they were once the test file ends.
import { readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { buildVariant, type VariantBuildResult } from '../../src/lib/variant/build.ts';
import { repoDir } from './cli.ts';

const imagesDir = join(repoDir, 'build', 'images', 'x86_64-dev');
const latestLink = join(imagesDir, 'latest');

function linkTarget(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Registers the clean-up of `0.1.0-<buildId>` and of the `latest` link after the file's tests, and
 * returns a function that builds dev under that build id (with extra environment, e.g.
 * PUBLISH_REPO_ROOT_JSON).
 */
export function devBuilder(buildId: string): (extraEnv?: NodeJS.ProcessEnv) => Promise<VariantBuildResult> {
  const previousLatest = linkTarget(latestLink);
  test.after.always(() => {
    rmSync(join(imagesDir, `0.1.0-${buildId}`), { recursive: true, force: true });
    if (previousLatest === undefined) {
      rmSync(latestLink, { force: true });
    } else if (linkTarget(latestLink) !== previousLatest) {
      rmSync(`${latestLink}.restore`, { force: true });
      symlinkSync(previousLatest, `${latestLink}.restore`);
      renameSync(`${latestLink}.restore`, latestLink);
    }
  });
  return (extraEnv = {}) => buildVariant(repoDir, 'dev', { progress: 'silent', env: { ...process.env, ...extraEnv, BRL_BUILD_ID: buildId } });
}

/** The OS disk (`.img.lz4`) of a build. */
export function osDiskOf(result: VariantBuildResult): string {
  const disk = result.artifacts.find((artifact) => artifact.kind === 'os-disk');
  if (disk === undefined) throw new Error('the build wrote no OS disk');
  return join(result.outputDir, disk.file);
}
