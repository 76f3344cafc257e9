import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeFatImage } from '../../../src/lib/image/fat.ts';

const run = promisify(execFile);
const mtoolsEnv = { ...process.env, MTOOLS_SKIP_CHECK: '1' };

async function scratch(t: import('ava').ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'brl-fat-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('a FAT image is bit-for-bit the same when built again later from files with other times, and fsck.fat finds nothing', async (t) => {
  const dir = await scratch(t);
  const efi = join(dir, 'bootx64.efi');
  await writeFile(efi, Buffer.alloc(300_000, 7));
  const options = { sizeKiB: 5 * 1024, volumeId: '1a2b3c4d', epoch: 1700000000, files: [{ source: efi, target: 'EFI/BOOT/BOOTX64.EFI' }] };
  await makeFatImage(join(dir, 'one.fat'), options);
  await utimes(efi, new Date(), new Date(Date.now() + 5000));
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await makeFatImage(join(dir, 'two.fat'), options);
  t.true((await readFile(join(dir, 'one.fat'))).equals(await readFile(join(dir, 'two.fat'))));
  const { stdout } = await run('fsck.fat', ['-n', join(dir, 'one.fat')]);
  // Exit 0 (execFile would throw otherwise): the directories EFI and EFI/BOOT and the file.
  t.regex(stdout, /3 files/);
  const listing = (await run('mdir', ['-i', join(dir, 'one.fat'), '::/EFI/BOOT'], { env: mtoolsEnv })).stdout;
  t.regex(listing, /Volume Serial Number is 1A2B-3C4D/);
  t.regex(listing, /BOOTX64\s+EFI\s+300000 2023-11-14\s+22:13/);
  const copied = join(dir, 'back.efi');
  await run('mcopy', ['-i', join(dir, 'one.fat'), '::/EFI/BOOT/BOOTX64.EFI', copied], { env: mtoolsEnv });
  t.true((await readFile(copied)).equals(await readFile(efi)));
});

test('the volume id and the epoch decide the bytes', async (t) => {
  const dir = await scratch(t);
  await mkdir(join(dir, 'src'));
  const file = join(dir, 'src', 'a.efi');
  await writeFile(file, 'x');
  const base = { sizeKiB: 1024, volumeId: '00000001', epoch: 1700000000, files: [{ source: file, target: 'EFI/A.EFI' }] };
  await makeFatImage(join(dir, 'a.fat'), base);
  await makeFatImage(join(dir, 'b.fat'), { ...base, volumeId: '00000002' });
  await makeFatImage(join(dir, 'c.fat'), { ...base, epoch: 1600000000 });
  const a = await readFile(join(dir, 'a.fat'));
  t.false(a.equals(await readFile(join(dir, 'b.fat'))));
  t.false(a.equals(await readFile(join(dir, 'c.fat'))));
  await t.throwsAsync(makeFatImage(join(dir, 'd.fat'), { ...base, volumeId: 'xyz' }), { message: /8 lowercase hex digits/ });
});
