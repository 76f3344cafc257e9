import test from 'ava';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bootedPartUuid, defaultDisk } from '../../../src/lib/signpost/index.ts';
import { scratchDir } from './fixtures.ts';

const partUuid = '6a6b5b8e-0e6f-4f3c-9d3e-2f1a0b9c8d7e';

async function fakeHost(): Promise<string> {
  const root = await scratchDir('brl-host-');
  await mkdir(join(root, 'proc'), { recursive: true });
  await writeFile(join(root, 'proc', 'cmdline'), `BOOT_IMAGE=(hd0,gpt3)/vmlinuz dm-mod.create="root,,,ro,0 1 verity 1 PARTUUID=${partUuid.toUpperCase()}/PARTNROFF=1 PARTUUID=${partUuid}/PARTNROFF=2 4096 4096 1 1 sha256 aa bb" -- quiet\n`);
  await mkdir(join(root, 'dev', 'disk', 'by-partuuid'), { recursive: true });
  await writeFile(join(root, 'dev', 'nvme0n1p3'), '');
  await symlink('../../nvme0n1p3', join(root, 'dev', 'disk', 'by-partuuid', partUuid));
  await mkdir(join(root, 'sys', 'class', 'block'), { recursive: true });
  await symlink('../../devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/nvme0n1p3', join(root, 'sys', 'class', 'block', 'nvme0n1p3'));
  return root;
}

test('on a real host the booted BOOT partition comes from the verity table GRUB put on the kernel command line', async (t) => {
  t.is(await bootedPartUuid(await fakeHost()), partUuid);
});

test('the default disk is the whole disk holding the booted partition, found through by-partuuid and sysfs', async (t) => {
  const root = await fakeHost();
  t.is(await defaultDisk(root), join(root, 'dev', 'nvme0n1'));
});

test('without a boot record or verity command line, the disk must be given', async (t) => {
  const root = await scratchDir('brl-host-');
  await t.throwsAsync(defaultDisk(root), { message: /cannot find the disk this host booted from/ });
});
