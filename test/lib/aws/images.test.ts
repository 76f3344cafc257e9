import test from 'ava';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { locateVariantImages } from '../../../src/lib/aws/images.ts';
import { makeVariantProject } from '../../fakes/aws/fixtures.ts';

/**
 * Decodes the OS image of `projectDir` in a fresh Node process (the CLI lookup is made once per
 * process) whose PATH is `pathDirs` alone; returns the size and SHA-256 it read.
 */
function decodeInChild(projectDir: string, pathDirs: string[]): { sizeBytes: number; sha256: string } {
  const images = new URL('../../../src/lib/aws/images.ts', import.meta.url).href;
  const script = `
    import { createHash } from 'node:crypto';
    import { describeDiskImage, locateVariantImages, openRawImage } from ${JSON.stringify(images)};
    const { os } = await locateVariantImages(process.argv[1], 'x86_64', 'aws-dev');
    const hash = createHash('sha256');
    for await (const chunk of openRawImage(os)) hash.update(chunk);
    console.log(JSON.stringify({ sizeBytes: (await describeDiskImage(os)).sizeBytes, sha256: hash.digest('hex') }));`;
  const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', script, projectDir], {
    encoding: 'utf8', env: { ...process.env, PATH: pathDirs.join(delimiter) },
  });
  return JSON.parse(stdout) as { sizeBytes: number; sha256: string };
}

/** A directory holding an `lz4` that logs each call to `calls` and runs the real one; executable or not. */
async function loggingLz4(executable: boolean): Promise<{ dir: string; calls: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'brl-lz4-shim-'));
  const real = execFileSync('sh', ['-c', 'command -v lz4'], { encoding: 'utf8' }).trim();
  const calls = join(dir, 'calls');
  await writeFile(join(dir, 'lz4'), `#!/bin/sh\necho "$*" >> ${calls}\nexec ${real} "$@"\n`, { mode: executable ? 0o755 : 0o644 });
  return { dir, calls };
}

const callsOf = (path: string): Promise<string> => readFile(path, 'utf8').catch(() => '');

test('with the lz4 CLI on PATH, images are decoded by it (its calls are logged), byte for byte', async (t) => {
  const project = await makeVariantProject();
  const shim = await loggingLz4(true);
  t.teardown(() => rm(shim.dir, { recursive: true, force: true }));
  const raw = await readFile(project.osRaw);
  t.deepEqual(decodeInChild(project.projectDir, [shim.dir]), { sizeBytes: raw.length, sha256: createHash('sha256').update(raw).digest('hex') });
  t.regex(await callsOf(shim.calls), /^-dc \S+\.img\.lz4$/m);
});

test('without an executable lz4 on PATH, images are decoded by the built-in streaming decoder (lz4 never runs), byte for byte', async (t) => {
  const project = await makeVariantProject();
  // The same logging lz4, but not executable: had brl run it anyway, the decode would fail or be logged.
  const shim = await loggingLz4(false);
  t.teardown(() => rm(shim.dir, { recursive: true, force: true }));
  const raw = await readFile(project.osRaw);
  t.deepEqual(decodeInChild(project.projectDir, [shim.dir]), { sizeBytes: raw.length, sha256: createHash('sha256').update(raw).digest('hex') });
  t.is(await callsOf(shim.calls), '');
});

test.serial('finds the OS and data images of the latest build and the version and build id they carry', async (t) => {
  const project = await makeVariantProject();
  // Convenience links beside the images must not confuse the lookup.
  await symlink(`${project.prefix}.img.lz4`, join(project.imageDir, 'bottlerocket-aws-dev-x86_64.img.lz4'));
  const images = await locateVariantImages(project.projectDir, 'x86_64', 'aws-dev');
  t.like(images, { version: '1.0.0', buildId: 'abcdef12', prefix: project.prefix, dir: project.imageDir });
  t.is(images.os.path, join(project.imageDir, `${project.prefix}.img.lz4`));
  t.is(images.data?.path, join(project.imageDir, `${project.prefix}-data.img.lz4`));
  await rm(join(project.imageDir, `${project.prefix}.img.lz4`));
  await t.throwsAsync(locateVariantImages(project.projectDir, 'x86_64', 'aws-dev'), { message: /no raw OS image/ });
});
