import test from 'ava';
import { join } from 'node:path';
import { brl, oneLine } from '../../helpers/cli.ts';
import { makeVariantProject } from '../../fakes/aws/fixtures.ts';
import { startFakeAws } from '../../fakes/aws/server.ts';
import type { ValidateAmiResult } from '../../../src/lib/aws/validate-ami.ts';

test('ami validate after publish and grant: every row ok; a pending image and an unreachable region exit non-zero naming them', async (t) => {
  const project = await makeVariantProject();
  const fake = await startFakeAws();
  t.teardown(() => fake.close());
  const run = (args: string[]) => brl(args, { cwd: project.projectDir, env: { ...fake.env, BRL_AWS_POLL_INTERVAL_MS: '1' } });
  t.is((await run(['ami', 'publish', '--variant', 'aws-dev', '--regions', 'us-west-2,eu-central-1', '--no-progress'])).exitCode, 0);
  const amisPath = join(project.imageDir, `${project.prefix}-amis.json`);
  t.is((await run(['ami', 'grant', '--ami-input', amisPath, '--group-names', 'all'])).exitCode, 0);

  const good = await run(['ami', 'validate', '--variant', 'aws-dev']);
  t.is(good.exitCode, 0, good.stderr);
  const rows = good.stdout.trim().split('\n');
  t.regex(rows[0] ?? '', /^REGION\s+FIELD\s+EXPECTED\s+ACTUAL\s+RESULT$/);
  t.regex(good.stdout, /eu-central-1\s+state\s+available\s+available\s+ok/);
  t.regex(good.stdout, /us-west-2\s+boot-mode\s+\(none\)\s+\(none\)\s+ok/);
  t.regex(good.stdout, /us-west-2\s+public\s+true\s+true\s+ok/);
  t.true(rows.slice(1).every((row) => row.endsWith(' ok')), good.stdout);

  const [image] = fake.state.imagesIn('eu-central-1');
  if (image) Object.assign(image, { state: 'pending', describesUntilAvailable: 1000 });
  const pending = await run(['ami', 'validate', '--variant', 'aws-dev', '--json']);
  t.is(pending.exitCode, 6);
  const result = JSON.parse(pending.stdout) as ValidateAmiResult;
  t.false(result.ok);
  t.deepEqual(result.regions.map((r) => [r.region, r.status]), [['eu-central-1', 'mismatch'], ['us-west-2', 'ok']]);
  t.deepEqual(result.regions[0]?.checks.filter((c) => !c.ok), [{ field: 'state', expected: 'available', actual: 'pending', ok: false }]);

  fake.state.options.disabledRegions.add('us-west-2');
  const human = await run(['ami', 'validate', '--variant', 'aws-dev']);
  t.is(human.exitCode, 6);
  t.regex(human.stdout, /us-west-2\s+-\s+-\s+-\s+unreachable: AWS refused the request \(AuthFailure\)/);
  t.regex(oneLine(human.stderr), /AMIs do not match in 2 place\(s\): eu-central-1: state is pending, expected available; us-west-2: cannot validate: AWS refused the request \(AuthFailure\)/);
  t.notRegex(human.stderr, /at .*\.js:\d+/);
});

test('ami validate outside a project needs --ami-input', async (t) => {
  const result = await brl(['ami', 'validate', '--variant', 'aws-dev', '--json'], { cwd: '/', env: { BRL_PROJECT_DIR: '' } });
  t.is(result.exitCode, 2, result.stderr);
  t.like(JSON.parse(result.stdout), { error: { code: 'MISSING_FLAGS' } });
});
