import test from 'ava';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brl } from '../helpers/cli.ts';

const imageFlags = (version: string) => ['--boot', `b-${version}`, '--root', `r-${version}`, '--hash', `h-${version}`];

test('brl repo manifest edits a manifest.json like updata', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-manifest-'));
  const file = join(dir, 'manifest.json');
  const run = async (args: string[]) => {
    const result = await brl(['repo', 'manifest', ...args]);
    t.is(result.exitCode, 0, result.stderr);
    return result;
  };
  await run(['add-update', file, '--variant', 'dev', '--arch', 'x86_64', '--version', '1.0.0', ...imageFlags('1.0.0')]);
  await run(['add-update', file, '-f', 'dev', '-a', 'x86_64', '-v', '1.1.0', '-b', 'b-1.1.0', '-r', 'r-1.1.0', '-h', 'h-1.1.0']);
  let manifest = JSON.parse(readFileSync(file, 'utf8'));
  t.deepEqual(manifest.updates.map((u: { version: string; max_version: string }) => [u.version, u.max_version]), [['1.0.0', '1.1.0'], ['1.1.0', '1.1.0']]);

  await run(['set-waves', file, '-l', 'dev', '-a', 'x86_64', '-v', '1.1.0', '--wave-policy', 'accelerated', '--start-at', '2026-12-01T00:00:00Z']);
  manifest = JSON.parse(readFileSync(file, 'utf8'));
  t.deepEqual(manifest.updates[1].waves, {
    0: '2026-12-01T01:00:00Z', 61: '2026-12-01T04:00:00Z', 245: '2026-12-01T08:00:00Z', 819: '2026-12-01T16:00:00Z', 1638: '2026-12-02T00:00:00Z',
  });

  await run(['set-max-version', file, '--max-version', '1.0.0']);
  await run(['remove-update', file, '-l', 'dev', '-a', 'x86_64', '-v', '1.1.0']);
  manifest = JSON.parse(readFileSync(file, 'utf8'));
  t.deepEqual(manifest.updates.map((u: { version: string; max_version: string }) => [u.version, u.max_version]), [['1.0.0', '1.0.0']]);
  const validated = await run(['validate', file, '--json']);
  t.is(JSON.parse(validated.stdout).updates.length, 1);

  const duplicate = await brl(['repo', 'manifest', 'add-update', file, '-f', 'dev', '-a', 'x86_64', '-v', '1.0.0', ...imageFlags('1.0.0')]);
  t.is(duplicate.exitCode, 9);
  t.regex(duplicate.stderr.replace(/\s*\n\s*›\s*/g, ' '), /already has an update for variant dev, arch x86_64, version 1\.0\.0/);
});
