import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ApiServer } from '../../../src/lib/host/apiserver/server.ts';
import { assertRootReadOnly, findDataPartition, filesystemOn, mountPoints } from '../../../src/lib/host/boot/prepare-local.ts';
import { runBootStep, type BootStep } from '../../../src/lib/host/boot/steps.ts';
import { DATA_PARTITION_GUID } from '../../../src/lib/image/layout.ts';
import { makeRoot } from './_root.ts';

test('the steps, run one at a time in unit order, boot a root as host-boot does in one go', async (t) => {
  const root = await makeRoot(t);
  const fwCfg = join(root, 'sys/firmware/qemu_fw_cfg/by_name/opt/org.brl/user-data/raw');
  await mkdir(dirname(fwCfg), { recursive: true });
  await writeFile(fwCfg, '[settings]\nmotd = "one unit at a time"\n');
  const lines: string[] = [];
  const step = (name: BootStep) => runBootStep(name, { root, log: (line) => lines.push(`${name}: ${line}`) });
  await step('migrator');
  await step('storewolf');
  const server = await ApiServer.start({ root, log: () => undefined });
  t.teardown(() => server.close());
  await step('early-boot-config');
  await step('sundog');
  await step('settings-applier');
  t.is(await readFile(join(root, 'etc/motd'), 'utf8'), 'one unit at a time\n');
  t.deepEqual(lines.map((line) => line.split(':')[0]), ['migrator', 'storewolf', 'early-boot-config', 'sundog', 'settings-applier']);
  t.regex(lines[2] ?? '', /applied: 40-qemu-fw-cfg/);
  t.regex(lines[4] ?? '', /files written, 0 failed/);
  // A second boot: early-boot-config has run, the datastore is kept.
  await step('early-boot-config');
  t.regex(lines[5] ?? '', /already ran on an earlier boot/);
});

test('the preferred data partition wins; the OS disk\'s stub is taken only when no data disk appears', async (t) => {
  const root = await makeRoot(t);
  const links = join(root, 'dev/disk/by-partuuid');
  await mkdir(links, { recursive: true });
  await writeFile(join(root, 'dev/vda13'), '');
  await symlink('../../vda13', join(links, DATA_PARTITION_GUID.fallback));
  const started = Date.now();
  t.deepEqual(await findDataPartition(root, 300), { device: join(root, 'dev/vda13'), which: 'fallback' });
  t.true(Date.now() - started >= 300, 'waited for the data disk first');
  await writeFile(join(root, 'dev/vdb1'), '');
  await symlink('../../vdb1', join(links, DATA_PARTITION_GUID.preferred));
  t.deepEqual(await findDataPartition(root, 5000), { device: join(root, 'dev/vdb1'), which: 'preferred' });
});

test('a partition without ext4 or XFS is the one to format', async (t) => {
  const root = await makeRoot(t);
  const fs = join(root, 'ext4.img');
  execFileSync('mkfs.ext4', ['-q', '-F', fs, '4M']);
  t.is(await filesystemOn(fs), 'ext4');
  await writeFile(join(root, 'zeros.img'), Buffer.alloc(4096));
  t.is(await filesystemOn(join(root, 'zeros.img')), undefined);
});

test('mount points are read from mountinfo with octal escapes decoded', async (t) => {
  const root = await makeRoot(t);
  const mountinfo = join(root, 'mountinfo');
  await writeFile(mountinfo, '22 1 254:0 / / ro,relatime - ext4 /dev/dm-0 ro\n30 22 253:17 / /local rw - ext4 /dev/vdb1 rw\n31 22 0:5 /x /with\\040space rw - tmpfs tmpfs rw\n');
  t.deepEqual([...(await mountPoints(mountinfo))], ['/', '/local', '/with space']);
});

test('a root that takes a write is refused, and the probe file does not stay behind', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'brl-rw-root-'));
  await t.throwsAsync(assertRootReadOnly(root), { message: /accepted a write .*must be read-only and verity-protected/ });
  t.deepEqual(await readdir(root), []);
});
