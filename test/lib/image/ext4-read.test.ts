import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdir, open, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readExt4File } from '../../../src/lib/image/ext4-read.ts';
import { bufferReader, handleReader } from '../../../src/lib/image/image-reader.ts';
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

/** What the real tool reads: `debugfs -R 'cat PATH'`. */
function debugfsCat(image: string, file: string): Buffer {
  return execFileSync('debugfs', ['-R', `cat ${file}`, image], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 256 * 1024 * 1024 });
}

test('reads a fragmented file through a depth-2 extent tree, from a file and from memory, as debugfs does', async (t) => {
  // 1 KiB blocks, 256 per group and no flex_bg: every group's bitmaps and inode table split the file, giving ~350 extents.
  const dir = await scratchDir('brl-ext4-');
  await mkdir(join(dir, 'tree', 'boot'), { recursive: true });
  const payload = Buffer.alloc(90 * 1024 * 1024);
  for (let at = 0; at < payload.length; at += 4) payload.writeUInt32LE((at * 2654435761) >>> 0, at);
  await writeFile(join(dir, 'tree', 'boot', 'vmlinuz'), payload);
  const path = join(dir, 'fs.img');
  execFileSync('mkfs.ext4', ['-q', '-F', '-b', '1024', '-g', '256', '-O', '^flex_bg,^resize_inode', '-N', '64', '-d', join(dir, 'tree'), path, '128M'], { stdio: 'pipe' });
  const extents = execFileSync('debugfs', ['-R', 'ex /boot/vmlinuz', path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  t.regex(extents, /^ 0\/ 2 /m, 'debugfs shows a tree of depth 2');
  t.true(extents.split('\n').filter((line) => line.startsWith(' 2/ 2')).length > 300, 'hundreds of leaf extents');
  const read = await readExt4File(handleReader(await open(path, 'r').then((handle) => { t.teardown(() => handle.close()); return handle; })), 0, '/boot/vmlinuz', path, { maxBytes: payload.length });
  t.true(read?.equals(debugfsCat(path, '/boot/vmlinuz')));
  t.true(read?.equals(payload));
  const inMemory = await readExt4File(bufferReader(await readFile(path)), 0, '/boot/vmlinuz', path, { maxBytes: payload.length });
  t.true(inMemory?.equals(payload));
});

test('reads a sparse file\'s holes as zeros, as debugfs does', async (t) => {
  const sparse = Buffer.alloc(3_000_010);
  sparse.fill(0x78, 100_000, 105_000);
  sparse.fill(0x79, 3_000_000);
  // Written with holes, which mkfs.ext4 -d keeps (it copies data found by SEEK_DATA only).
  const dir = await scratchDir('brl-ext4-');
  await mkdir(join(dir, 'tree'));
  const handle = await open(join(dir, 'tree', 'sparse.bin'), 'w');
  await handle.write(sparse.subarray(100_000, 105_000), 0, 5000, 100_000);
  await handle.write(sparse.subarray(3_000_000), 0, 10, 3_000_000);
  await handle.close();
  const path = join(dir, 'fs.img');
  execFileSync('mkfs.ext4', ['-q', '-F', '-b', '1024', '-d', join(dir, 'tree'), path, '8M'], { stdio: 'pipe' });
  t.regex(execFileSync('debugfs', ['-R', 'ex /sparse.bin', path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }), /2\/\s+2/, 'two extents around holes');
  const read = await readFromMemory(path, '/sparse.bin', { maxBytes: 4 * 1024 * 1024 });
  t.true(read?.equals(debugfsCat(path, '/sparse.bin')));
  t.true(read?.equals(sparse));
});

async function readFromMemory(path: string, file: string, options: { maxBytes?: number } = {}): Promise<Buffer | undefined> {
  return readExt4File(bufferReader(await readFile(path)), 0, file, path, options);
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if ((error as { code?: string }).code !== 'BAD_EXT4') throw error;
    return (error as Error).message;
  }
  return 'read';
}

test('refuses inline data, a symlink, a directory, a file over the bound and an unknown feature, naming each', async (t) => {
  const inline = await image(['-O', 'inline_data'], { tiny: 'hi' });
  t.regex(await refusal(readFromMemory(inline, '/tiny')), /fs\.img: \/tiny keeps its data inline in its inode/);
  const plain = await image([], { 'grub/grub.cfg': 'cfg\n', big: big });
  await symlink('grub/grub.cfg', join(plain, '..', 'tree', 'link'));
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', join(plain, '..', 'tree'), plain, '8M'], { stdio: 'pipe' });
  t.regex(await refusal(readFromMemory(plain, '/link')), /\/link is a symbolic link, which this reader does not follow/);
  t.regex(await refusal(readFromMemory(plain, '/grub')), /\/grub is not a regular file/);
  t.regex(await refusal(readFromMemory(plain, '/grub/grub.cfg/x')), /\/grub\/grub.cfg is not a directory/);
  t.regex(await refusal(readFromMemory(plain, '/big', { maxBytes: 1000 })), /\/big is 300000 bytes, more than the 1000 read here/);
  const metaBg = await image(['-O', 'meta_bg,^resize_inode'], { x: 'x' });
  t.regex(await refusal(readFromMemory(metaBg, '/x')), /uses the ext4 feature meta_bg, which this reader does not read/);
});

test('refuses a damaged extent header and an image cut short', async (t) => {
  const path = await image([], { 'grub/grub.cfg': 'cfg\n', big });
  const bytes = await readFile(path);
  t.regex(await refusal(readExt4File(bufferReader(bytes.subarray(0, 64 * 1024)), 0, '/big', path)), /the filesystem ends at byte \d+/);
  // Every extent header's magic cleared: the root directory's is the first one met.
  const damaged = Buffer.from(bytes);
  for (let at = damaged.indexOf(Buffer.from([0x0a, 0xf3])); at >= 0; at = damaged.indexOf(Buffer.from([0x0a, 0xf3]), at + 2)) damaged[at] = 0;
  t.regex(await refusal(readExt4File(bufferReader(damaged), 0, '/big', path)), /has no extent header/);
});
