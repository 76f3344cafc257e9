import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { brl, oneLine } from '../../helpers/cli.ts';
import { makeVariantProject } from '../../fakes/aws/fixtures.ts';
import { startFakeAws } from '../../fakes/aws/server.ts';
import type { ValidateSsmResult } from '../../../src/lib/aws/validate-ssm.ts';

test('ssm validate after ssm publish: ok; a changed value and a missing parameter exit 6 naming region and parameter', async (t) => {
  const project = await makeVariantProject();
  const fake = await startFakeAws();
  t.teardown(() => fake.close());
  await writeFile(join(project.projectDir, 'Infra.toml'), '[aws]\nregions = ["us-west-2", "eu-north-1"]\nssm_prefix = "/brl/test"\n');
  const amis = { 'eu-north-1': { id: 'ami-0aaaaaaaaaaaaaaaa', name: 'n', public: false }, 'us-west-2': { id: 'ami-0bbbbbbbbbbbbbbbb', name: 'n', public: false } };
  await writeFile(join(project.imageDir, `${project.prefix}-amis.json`), JSON.stringify(amis));
  const run = (args: string[]) => brl(args, { cwd: project.projectDir, env: fake.env });
  const published = await run(['ssm', 'publish', '--variant', 'aws-dev']);
  t.is(published.exitCode, 0, published.stderr);

  const good = await run(['ssm', 'validate', '--variant', 'aws-dev']);
  t.is(good.exitCode, 0, good.stderr);
  t.regex(good.stdout, /^REGION\s+PARAMETER\s+EXPECTED\s+ACTUAL\s+RESULT\n/);
  t.regex(good.stdout, /eu-north-1\s+\/brl\/test\/aws-dev\/x86_64\/1\.0\.0-abcdef12\/image_id\s+ami-0aaaaaaaaaaaaaaaa\s+ami-0aaaaaaaaaaaaaaaa\s+ok/);
  t.is(good.stdout.trim().split('\n').filter((row) => row.endsWith(' ok')).length, 4);

  const imageId = fake.state.parameters.get('us-west-2\0/brl/test/aws-dev/x86_64/1.0.0-abcdef12/image_id');
  if (imageId) imageId.value = 'ami-0cccccccccccccccc';
  const changed = await run(['ssm', 'validate', '--variant', 'aws-dev', '--json']);
  t.is(changed.exitCode, 6);
  const result = JSON.parse(changed.stdout) as ValidateSsmResult;
  t.deepEqual(result.regions.map((r) => [r.region, r.status]), [['eu-north-1', 'ok'], ['us-west-2', 'mismatch']]);
  t.deepEqual(result.regions[1]?.checks.filter((c) => !c.ok), [
    { field: '/brl/test/aws-dev/x86_64/1.0.0-abcdef12/image_id', expected: 'ami-0bbbbbbbbbbbbbbbb', actual: 'ami-0cccccccccccccccc', ok: false },
  ]);

  fake.state.parameters.delete('eu-north-1\0/brl/test/aws-dev/x86_64/1.0.0-abcdef12/image_version');
  const missing = await run(['ssm', 'validate', '--variant', 'aws-dev', '--regions', 'eu-north-1']);
  t.is(missing.exitCode, 6);
  t.regex(missing.stdout, /eu-north-1\s+\/brl\/test\/aws-dev\/x86_64\/1\.0\.0-abcdef12\/image_version\s+1\.0\.0-abcdef12\s+\(missing\)\s+MISMATCH/);
  t.regex(oneLine(missing.stderr), /eu-north-1: \/brl\/test\/aws-dev\/x86_64\/1\.0\.0-abcdef12\/image_version is \(missing\), expected 1\.0\.0-abcdef12/);
  t.notRegex(missing.stdout, /us-west-2/);
});
