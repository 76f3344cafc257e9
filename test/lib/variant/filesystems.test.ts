import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeExt4, rootExt4 } from '../../../src/lib/variant/filesystems.ts';

// systemd ships units named with `\x2d` escapes; other packages may name files with quotes.
test('files named with backslashes and quotes get their fixed ctime and label in an ext4 image', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'brl-fs-'));
  const tree = join(dir, 'tree');
  await mkdir(join(tree, 'units'), { recursive: true });
  const names = ['units/system-systemd\\x2dcryptsetup.slice', 'units/say "hi"'];
  for (const name of names) await writeFile(join(tree, name), 'x');
  const image = join(dir, 'root.ext4');
  const labels = new Map(names.map((name) => [name, 'system_u:object_r:os_t:s0']));
  await makeExt4(image, tree, { uuid: '8a7a8b1e-0d0c-4c1e-9d51-3b8d3c8b5c61', epoch: 1_700_000_000, sizeMiB: 8, profile: rootExt4, labels, shrink: false });
  execFileSync('fsck.ext4', ['-fn', image], { stdio: 'pipe' });
  for (const name of names) {
    const stat = execFileSync('debugfs', ['-R', `stat "/${name.replaceAll('"', '""')}"`, image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    t.regex(stat, /ctime: 0x6553f100:/, name);
    const label = execFileSync('debugfs', ['-R', `ea_get "/${name.replaceAll('"', '""')}" security.selinux`, image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    t.regex(label, /system_u:object_r:os_t:s0/, name);
  }
});
