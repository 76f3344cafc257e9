import test from 'ava';
import { createHash } from 'node:crypto';
import { readFile, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describeDiskImage, locateVariantImages, openRawImage } from '../../../src/lib/aws/images.ts';
import { makeVariantProject } from '../../fakes/aws/fixtures.ts';

async function sha256Of(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk);
  return hash.digest('hex');
}

// Serial, and first in this file's process: it decides once whether the lz4 CLI is on PATH.
test.serial('without the lz4 CLI, images are decoded by the built-in streaming decoder, byte for byte', async (t) => {
  const project = await makeVariantProject();
  const savedPath = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    const images = await locateVariantImages(project.projectDir, 'x86_64', 'aws-dev');
    t.is((await describeDiskImage(images.os)).sizeBytes, (await readFile(project.osRaw)).length);
    t.is(await sha256Of(openRawImage(images.os)), createHash('sha256').update(await readFile(project.osRaw)).digest('hex'));
  } finally {
    process.env.PATH = savedPath;
  }
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
