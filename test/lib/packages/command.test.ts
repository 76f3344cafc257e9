import test from 'ava';
import { brl } from '../../helpers/cli.ts';
import { makeProject, scriptSpec, writePackage } from './project.ts';

test('brl build package --json returns each package status; a second run reports them cached', async (t) => {
  const projectDir = makeProject(['base']);
  const env = { BRL_PROJECT_DIR: projectDir };
  const first = await brl(['build', 'package', 'base', '--json'], { env });
  t.is(first.exitCode, 0, first.stderr);
  const result = JSON.parse(first.stdout) as { packages: Array<{ name: string; status: string; rpms: string[] }> };
  t.deepEqual(result.packages.map((pkg) => [pkg.name, pkg.status, pkg.rpms.length]), [['base', 'built', 1]]);

  const second = await brl(['build', 'package', '--all'], { env });
  t.is(second.exitCode, 0, second.stderr);
  t.regex(second.stdout, /^base +cached \(1 RPM\)$/m);
  t.regex(second.stdout, /nothing to rebuild: every package is cached/);
});

test('a failed build exits with the build-failed code and prints the tail of its log', async (t) => {
  const projectDir = makeProject([]);
  writePackage(projectDir, 'fails', { 'fails.spec': scriptSpec('fails', 'echo "compiler says no" >&2\nexit 3') });
  const run = await brl(['build', 'package', 'fails'], { env: { BRL_PROJECT_DIR: projectDir } });
  t.is(run.exitCode, 8);
  t.regex(run.stdout, /--- last \d+ lines of .*\/build\/logs\/x86_64\/fails\.log ---/);
  t.regex(run.stdout, /compiler says no/);
  t.regex(run.stderr, /1 of 1 packages failed: fails/);
  t.notRegex(run.stderr, /at .*\.ts:\d+/, 'no stack trace');

  const json = await brl(['build', 'package', 'fails', '--json'], { env: { BRL_PROJECT_DIR: projectDir } });
  t.is(json.exitCode, 8);
  t.is((JSON.parse(json.stdout) as { packages: Array<{ status: string }> }).packages[0]?.status, 'failed');
});

test('mistakes in the request are errors without a stack trace', async (t) => {
  const projectDir = makeProject(['base']);
  writePackage(projectDir, 'loop-a', { 'loop-a.spec': scriptSpec('loop-a', 'true'), 'package.toml': 'build-dependencies = ["loop-b"]\n' });
  writePackage(projectDir, 'loop-b', { 'loop-b.spec': scriptSpec('loop-b', 'true'), 'package.toml': 'build-dependencies = ["loop-a"]\n' });
  const env = { BRL_PROJECT_DIR: projectDir };

  const unknown = await brl(['build', 'package', 'nope'], { env });
  t.is(unknown.exitCode, 4);
  t.regex(unknown.stderr, /unknown package "nope"/);
  t.regex(unknown.stderr, /known packages: base, loop-a, loop-b/);

  const cycle = await brl(['build', 'package', 'loop-a', '--json'], { env });
  t.is(cycle.exitCode, 3);
  t.is((JSON.parse(cycle.stdout) as { error: { message: string } }).error.message, 'build-dependency cycle: loop-a → loop-b → loop-a');

  const nothing = await brl(['build', 'package'], { env });
  t.is(nothing.exitCode, 2);
  t.regex(nothing.stderr, /name packages to build, or pass --all/);
});
