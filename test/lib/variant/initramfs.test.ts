import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeCpio } from '../../../src/lib/variant/cpio.ts';
import { buildInitramfs, moduleLoadOrder, VERITY_INIT_PATH } from '../../../src/lib/variant/initramfs.ts';
import { BrlError } from '../../../src/lib/core/errors.ts';

function scratch(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'brl-initramfs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const modulesDep = [
  'kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko kernel/lib/reed_solomon/reed_solomon.ko kernel/drivers/md/dm-mod.ko',
  'kernel/drivers/md/dm-bufio.ko: kernel/drivers/md/dm-mod.ko',
  'kernel/drivers/md/dm-mod.ko:',
  'kernel/lib/reed_solomon/reed_solomon.ko:',
  'kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko',
  'kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko',
  'kernel/drivers/virtio/virtio_ring.ko:',
  'kernel/drivers/virtio/virtio.ko:',
  '',
].join('\n');

test('modules load after everything they depend on, each once; names match across - and _', (t) => {
  const order = moduleLoadOrder(modulesDep, ['virtio_pci', 'virtio_blk', 'xen-blkfront', 'dm-verity']);
  t.is(new Set(order).size, order.length);
  t.deepEqual(order.map((path) => path.split('/').pop()), ['virtio.ko', 'virtio_ring.ko', 'virtio_pci.ko', 'virtio_blk.ko', 'dm-mod.ko', 'dm-bufio.ko', 'reed_solomon.ko', 'dm-verity.ko']);
  for (const [index, path] of order.entries()) {
    const deps = modulesDep.split('\n').find((line) => line.startsWith(`${path}:`))?.split(':')[1]?.trim().split(/\s+/).filter(Boolean) ?? [];
    for (const dep of deps) t.true(order.indexOf(dep) < index, `${dep} before ${path}`);
  }
});

test('the cpio archive lists back with the real cpio, byte for byte the same each time', (t) => {
  const dir = scratch(t);
  const entries = [
    { kind: 'dir' as const, path: 'dev', mode: 0o755 },
    { kind: 'char' as const, path: 'dev/console', mode: 0o600, major: 5, minor: 1 },
    { kind: 'file' as const, path: 'init', mode: 0o755, data: Buffer.from('#!/bin/true\n') },
    { kind: 'file' as const, path: 'odd-name.txt', mode: 0o644, data: Buffer.from('12345') },
  ];
  const archive = writeCpio(entries, 1_700_000_000);
  t.deepEqual(writeCpio(entries, 1_700_000_000), archive);
  writeFileSync(join(dir, 'a.cpio'), archive);
  const listing = execFileSync('cpio', ['-itv', '--quiet', '-F', join(dir, 'a.cpio')], { env: { ...process.env, TZ: 'UTC', LC_ALL: 'C' } }).toString().trim().split('\n');
  t.is(listing.length, 4);
  t.regex(listing[1] ?? '', /^crw------- +1 root +root +5, +1 Nov 14 {2}2023 dev\/console$/);
  t.regex(listing[2] ?? '', /^-rwxr-xr-x +1 root +root +12 Nov 14 {2}2023 init$/);
  mkdirSync(join(dir, 'out'));
  execFileSync('cpio', ['-id', '--quiet', '-F', join(dir, 'a.cpio'), 'odd-name.txt'], { cwd: join(dir, 'out') });
  t.is(readFileSync(join(dir, 'out', 'odd-name.txt'), 'utf8'), '12345');
});

test('an initramfs holds /init and the modules in load order; a dynamically linked init is refused', async (t) => {
  const dir = scratch(t);
  const root = join(dir, 'root');
  const modules = join(root, 'usr/lib/modules/6.1.0-test');
  for (const line of modulesDep.split('\n').filter(Boolean)) {
    const path = line.split(':')[0] as string;
    mkdirSync(join(modules, path, '..'), { recursive: true });
    writeFileSync(join(modules, path), `module ${path}`);
  }
  writeFileSync(join(modules, 'modules.dep'), modulesDep);
  mkdirSync(join(root, VERITY_INIT_PATH, '..'), { recursive: true });
  writeFileSync(join(dir, 'init.c'), 'int main(void) { return 0; }\n');
  execFileSync('gcc', ['-static-pie', '-fPIE', '-o', join(root, VERITY_INIT_PATH), join(dir, 'init.c')]);
  const input = { rootTree: root, kernelVersion: '6.1.0-test', rootFilesystem: 'ext4' as const, epoch: 1_700_000_000 };
  const built = await buildInitramfs(input);
  t.truthy(built);
  t.deepEqual(built?.modules, ['virtio', 'virtio_ring', 'virtio_pci', 'virtio_blk', 'dm_mod', 'dm_bufio', 'reed_solomon', 'dm_verity']);
  t.deepEqual((await buildInitramfs(input))?.archive, built?.archive, 'reproducible');
  writeFileSync(join(dir, 'initrd.img'), built?.archive ?? Buffer.alloc(0));
  const names = execFileSync('cpio', ['-it', '--quiet', '-F', join(dir, 'initrd.img')]).toString().trim().split('\n');
  t.true(names.includes('init') && names.includes('dev/console') && names.includes('modules/dm-verity.ko'));
  const list = execFileSync('cpio', ['-i', '--quiet', '--to-stdout', '-F', join(dir, 'initrd.img'), 'etc/verity-init/modules']).toString();
  t.is(list.split('\n')[0], '/modules/virtio.ko');

  execFileSync('gcc', ['-o', join(root, VERITY_INIT_PATH), join(dir, 'init.c')]);
  const error = await t.throwsAsync(buildInitramfs(input), { instanceOf: BrlError });
  t.is(error?.code, 'INIT_NOT_STATIC');
  rmSync(join(root, VERITY_INIT_PATH));
  t.is(await buildInitramfs(input), undefined, 'no verity-init, no initramfs');
});
