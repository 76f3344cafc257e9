import test from 'ava';
import { join } from 'node:path';
import { brl } from '../helpers/cli.ts';
import { makeAbDisk, scratchDir } from '../lib/signpost/fixtures.ts';

test('brl signpost walks a disk image through boot, staging and activation with --json results', async (t) => {
  const dir = await scratchDir('brl-signpost-cmd-');
  const disk = join(dir, 'disk.img');
  await makeAbDisk(disk);
  const host = ['--disk', disk, '--root', join(dir, 'root')];
  const boot = await brl(['signpost', 'next-boot', ...host, '--json']);
  t.is(boot.exitCode, 0, boot.stderr);
  t.is((JSON.parse(boot.stdout) as { booted: string }).booted, 'A');
  for (const command of ['clear-inactive', 'mark-inactive-valid', 'upgrade-to-inactive']) {
    const result = await brl(['signpost', command, ...host]);
    t.is(result.exitCode, 0, `${command}: ${result.stderr}`);
  }
  const status = JSON.parse((await brl(['signpost', 'status', ...host, '--json'])).stdout) as { nextSet: string; sets: { label: string; flags: object }[] };
  t.is(status.nextSet, 'B');
  t.deepEqual(status.sets[1]!.flags, { priority: 2, triesLeft: 1, successful: false });
  const refused = await brl(['signpost', 'upgrade-to-inactive', ...host, '--json']);
  t.is(refused.exitCode, 9);
  t.is((JSON.parse(refused.stdout) as { error: { code: string } }).error.code, 'ALREADY_MARKED');
});
