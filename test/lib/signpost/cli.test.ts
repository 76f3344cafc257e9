import test from 'ava';
import { join } from 'node:path';
import { signpostMain } from '../../../src/lib/signpost/cli.ts';
import { makeAbDisk, scratchDir } from './fixtures.ts';

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await signpostMain(argv, { stdout: (text) => { stdout += text; }, stderr: (text) => { stderr += text; } });
  return { code, stdout, stderr };
}

test('signpost prints each set with its own partitions and flags, and the next set', async (t) => {
  const dir = await scratchDir('brl-signpost-cli-');
  const disk = join(dir, 'disk.img');
  await makeAbDisk(disk);
  const host = ['--disk', disk, '--root', join(dir, 'root')];
  t.is((await run(['next-boot', ...host])).code, 0);
  const status = await run(['status', ...host]);
  t.is(status.code, 0);
  t.regex(status.stdout, /Set A \(active\):\n  BOOT partition 1 [\s\S]*priority 1, tries left 0, successful true, will boot true\nSet B:\n  BOOT partition 4 [\s\S]*priority 0, tries left 0, successful false, will boot false\nActive set: A\nNext set: A\n$/);
  t.is((await run(['has-boot-ever-succeeded', ...host])).stdout, '');
  t.is((await run(['mark-successful-boot', ...host])).code, 0);
  t.is((await run(['has-boot-ever-succeeded', ...host])).stdout, 'true\n');
  const json = JSON.parse((await run(['clear-inactive', '--json', ...host])).stdout) as { sets: { label: string; flags: object }[] };
  t.deepEqual(json.sets[1]!.flags, { priority: 0, triesLeft: 0, successful: false });
});

test('signpost rejects unknown commands and flags with usage and exit 1, and explains refusals', async (t) => {
  const unknown = await run(['frobnicate']);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /unknown command: frobnicate\n\nUsage: signpost <COMMAND>/);
  t.is((await run(['status', '--bogus'])).code, 1);
  t.is((await run([])).code, 1);
  const dir = await scratchDir('brl-signpost-cli-');
  const disk = join(dir, 'disk.img');
  await makeAbDisk(disk);
  await run(['next-boot', '--disk', disk, '--root', dir]);
  const refused = await run(['upgrade-to-inactive', '--disk', disk, '--root', dir]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /^signpost: set B is not valid .*\nhint: stage an update first/);
});
