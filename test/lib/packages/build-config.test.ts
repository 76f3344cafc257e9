import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../../../src/lib/core/errors.ts';
import { loadBuildConfig } from '../../../src/lib/packages/build-config.ts';
import { loadFetchConfig } from '../../../src/lib/fetch/index.ts';

function projectWith(toml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'brl-build-config-'));
  writeFileSync(join(dir, 'brl.toml'), toml);
  return dir;
}

test('[build] jobs comes from brl.toml, and --jobs overrides it', async (t) => {
  const dir = projectWith('[fetch]\nupstream-fallback = true\n\n[build]\njobs = 3\n');
  t.is((await loadBuildConfig(dir)).jobs, 3);
  t.is((await loadBuildConfig(dir, { jobs: 1 })).jobs, 1);
});

test('a bad [build] value or an unknown key names the file, line and key', async (t) => {
  const bad = await t.throwsAsync(loadBuildConfig(projectWith('[build]\n\njobs = 0\n')), { instanceOf: BrlError });
  t.is(bad?.exitCode, ExitCode.badInput);
  t.regex(bad?.message ?? '', /brl\.toml:3: build\.jobs: must be an integer from 1 to 64, got 0/);
  const unknown = await t.throwsAsync(loadBuildConfig(projectWith('[build]\nparallel = 2\n')), { instanceOf: BrlError });
  t.regex(unknown?.message ?? '', /brl\.toml:2: build\.parallel: unknown key \(expected one of: jobs\)/);
});

test('a misspelled section of brl.toml is an error naming it, not ignored', async (t) => {
  const project = mkdtempSync(join(tmpdir(), 'brl-config-'));
  writeFileSync(join(project, 'brl.toml'), '[build]\njobs = 2\n\n[fecth]\nupstream-fallback = true\n');
  const error = await t.throwsAsync(loadBuildConfig(project));
  t.regex(error?.message ?? '', /brl\.toml:4: fecth: unknown key \(expected one of: fetch, build, secure-boot\)/);
  await t.throwsAsync(loadFetchConfig(project), { message: /fecth: unknown key/ });
});
