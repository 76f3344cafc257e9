import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readExt4File } from '../../../src/lib/image/ext4-read.ts';
import { handleReader } from '../../../src/lib/image/image-reader.ts';
import { scratchDir } from '../signpost/fixtures.ts';

async function image(options: string[], files: Record<string, Buffer | string>, blockSize = '4096'): Promise<string> {
  const dir = await scratchDir('brl-ext4-');
  const tree = join(dir, 'tree');
  for (const [path, data] of Object.entries(files)) {
    await mkdir(join(tree, path, '..'), { recursive: true });
    await writeFile(join(tree, path), data);
  }
  const path = join(dir, 'fs.img');
  execFileSync('mkfs.ext4', ['-q', '-F', '-b', blockSize, ...options, '-d', tree, path, '8M'], { stdio: 'pipe' });
  return path;
}

async function read(path: string, file: string, offset = 0): Promise<Buffer | undefined> {
  const handle = await open(path, 'r');
  try {
    return await readExt4File(handleReader(handle), offset, file, path);
  } finally {
    await handle.close();
  }
}

const big = Buffer.from(Array.from({ length: 300_000 }, (_, index) => (index * 7) % 256));

test('reads files through extent trees, with 4 KiB and 1 KiB blocks', async (t) => {
  for (const blockSize of ['4096', '1024']) {
    const path = await image([], { 'grub/grub.cfg': 'set default="0"\n', 'big.bin': big }, blockSize);
    t.is((await read(path, '/grub/grub.cfg'))?.toString(), 'set default="0"\n');
    t.true((await read(path, '/big.bin'))?.equals(big));
  }
});

test('reads files through classic block maps (no extents), including indirect blocks', async (t) => {
  const path = await image(['-O', '^extent,^flex_bg,^64bit'], { 'grub/grub.cfg': 'x\n', 'big.bin': big }, '1024');
  t.true((await read(path, '/big.bin'))?.equals(big));
  t.is((await read(path, '/grub/grub.cfg'))?.toString(), 'x\n');
});

test('finds a file in a hashed (htree) directory and at an offset inside a disk; a missing file is undefined', async (t) => {
  const files: Record<string, string> = { 'grub/grub.cfg': 'cfg\n' };
  for (let index = 0; index < 600; index++) files[`grub/entry-${index}.cfg`] = `entry ${index}\n`;
  const path = await image([], files);
  t.is((await read(path, '/grub/entry-599.cfg'))?.toString(), 'entry 599\n');
  const disk = `${path}.disk`;
  const handle = await open(disk, 'w');
  const { readFile } = await import('node:fs/promises');
  await handle.write(await readFile(path), 0, undefined, 3 * 1024 * 1024);
  await handle.close();
  t.is((await read(disk, '/grub/grub.cfg', 3 * 1024 * 1024))?.toString(), 'cfg\n');
  t.is(await read(disk, '/grub/missing.cfg', 3 * 1024 * 1024), undefined);
});
