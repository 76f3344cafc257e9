import test from 'ava';
import { readFile } from 'node:fs/promises';
import { updogMain } from '../../../src/lib/updog/cli.ts';
import { buildRelease, makeHost, startRepository, type ReleaseImages } from './fixtures.ts';

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await updogMain(argv, { stdout: (text) => { stdout += text; }, stderr: (text) => { stderr += text; } });
  return { code, stdout, stderr };
}

let release: ReleaseImages;
test.before(async () => {
  release = await buildRelease('1.1.0');
});

test('usage errors: no subcommand, two words, unknown flag, the removed -t/--timestamp', async (t) => {
  for (const argv of [[], ['update', 'now'], ['check-update', '--bogus'], ['check-update', '-t', '2020-01-01'], ['check-update', '--timestamp']]) {
    const result = await run(argv);
    t.is(result.code, 1, argv.join(' '));
    t.regex(result.stderr, /Usage: updog <SUBCOMMAND> \[OPTIONS\]/);
  }
  t.is((await run(['prepare'])).code, 0);
});

test('check-update, whats, --all and --json print what upstream updog prints', async (t) => {
  const older = await buildRelease('1.0.5');
  const repo = await startRepository([older, release], {}, { '(1.0.0, 1.1.0)': [] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.0.0');
  const common = ['--root', host.root, '--disk', host.disk, '--now'];
  const text = await run(['check-update', ...common]);
  t.deepEqual([text.code, text.stdout], [0, 'test-minimal 1.1.0\n']);
  t.is((await run(['whats', ...common])).stdout, 'test-minimal 1.1.0\n');
  const json = JSON.parse((await run(['check-update', '-j', ...common])).stdout) as Record<string, unknown>;
  t.deepEqual(Object.keys(json), ['variant', 'arch', 'version', 'max_version', 'waves', 'images']);
  const all = await run(['check-update', '--all', ...common]);
  t.deepEqual([all.stdout, all.stderr], ['', 'test-minimal 1.1.0\ntest-minimal 1.0.5\n']);
  const allJson = JSON.parse((await run(['check-update', '-a', '-j', ...common])).stdout) as { version: string }[];
  t.deepEqual(allJson.map((u) => u.version), ['1.1.0', '1.0.5']);
  const image = await run(['check-update', '-i', '1.0.5', ...common]);
  t.is(image.stdout, 'test-minimal 1.0.5\n');
});

test('update prints progress on stderr and the result on stdout; update-apply and update-revert flip flags', async (t) => {
  const repo = await startRepository([release], {}, { '(1.0.0, 1.1.0)': [] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.0.0');
  const common = ['--root', host.root, '--disk', host.disk, '-n'];
  const staged = await run(['update-image', ...common]);
  t.is(staged.code, 0, staged.stderr);
  t.regex(staged.stderr, /^Starting update to 1\.1\.0\nWrote 4\.0 MiB of 1\.1\.0 into the inactive set in \d+\.\d s, peak RSS \d+ MiB\n$/);
  t.is(staged.stdout, 'Update applied: test-minimal 1.1.0\n');
  t.is((await run(['update-apply', '--root', host.root, '--disk', host.disk])).code, 0);
  t.is((await run(['update-revert', '--root', host.root, '--disk', host.disk])).code, 0);
  process.env.UPDOG_REBOOT_COMMAND = `echo rebooted > ${host.dir}/reboot.log`;
  t.is((await run(['update-apply', '--root', host.root, '--disk', host.disk, '--reboot'])).code, 0);
  t.is(await readFile(`${host.dir}/reboot.log`, 'utf8'), 'rebooted\n');
  process.env.UPDOG_REBOOT_COMMAND = 'exit 3';
  const failed = await run(['update-apply', '--root', host.root, '--disk', host.disk, '--reboot']);
  t.deepEqual([failed.code, failed.stderr], [1, 'updog: set B is already marked for upgrade (priority 2)\nhint: run `updog update-revert` (signpost cancel-upgrade) first, or reboot into it\n']);
  await run(['update-revert', '--root', host.root, '--disk', host.disk]);
  const rebootFails = await run(['update-apply', '--root', host.root, '--disk', host.disk, '--reboot']);
  t.deepEqual([rebootFails.code, rebootFails.stderr], [1, 'updog: reboot command "exit 3" exited with 3\n']);
});

test('nothing to do prints "No update required"; no update available is exit 1', async (t) => {
  const repo = await startRepository([release], {}, { '(1.0.0, 1.1.0)': [] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.1.0');
  const update = await run(['update', '--root', host.root, '--disk', host.disk]);
  t.deepEqual([update.code, update.stdout, update.stderr], [0, '', 'No update required\n']);
  const check = await run(['check-update', '--root', host.root, '--disk', host.disk]);
  t.deepEqual([check.code, check.stderr], [1, 'No update available\n']);
});

test('a broken config names the file, line and key', async (t) => {
  const repo = await startRepository([release]);
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.0.0', { seed: 'many' });
  const result = await run(['check-update', '--root', host.root, '--disk', host.disk]);
  t.is(result.code, 1);
  t.regex(result.stderr, /updog: .*etc\/updog\.toml:3: seed: must be an unsigned 32-bit integer, got "many"/);
});
