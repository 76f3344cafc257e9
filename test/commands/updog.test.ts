import test from 'ava';
import { brl } from '../helpers/cli.ts';
import { buildRelease, makeHost, startRepository } from '../lib/updog/fixtures.ts';

test('brl updog check-update and update-image act on a host root and disk image', async (t) => {
  const release = await buildRelease('1.1.0');
  const repo = await startRepository([release], {}, { '(1.0.0, 1.1.0)': [] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.0.0');
  const common = ['--root', host.root, '--disk', host.disk];
  const waiting = await brl(['updog', 'check-update', ...common, '--json']);
  t.is(waiting.exitCode, 0, waiting.stderr);
  t.is((JSON.parse(waiting.stdout) as { version: string }).version, '1.1.0', 'no waves in this repository');
  const staged = await brl(['updog', 'update-image', ...common, '--now', '--json']);
  t.is(staged.exitCode, 0, staged.stderr);
  const result = JSON.parse(staged.stdout) as { status: string; update: { version: string }; signpost: { nextSet: string } };
  t.deepEqual([result.status, result.update.version, result.signpost.nextSet], ['staged', '1.1.0', 'A']);
  const apply = await brl(['updog', 'update-apply', ...common]);
  t.regex(apply.stdout, /Set B boots next/);
  const revert = await brl(['updog', 'update-revert', ...common]);
  t.regex(revert.stdout, /Set A boots next/);
  const unknown = await brl(['updog', 'check-update', ...common, '--image', '9.9.9']);
  t.is(unknown.exitCode, 4);
  t.regex(unknown.stderr, /no applicable update with version 9\.9\.9/);
});
