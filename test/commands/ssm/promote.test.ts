import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { brl } from '../../helpers/cli.ts';
import { makeVariantProject } from '../../fakes/aws/fixtures.ts';
import { startFakeAws } from '../../fakes/aws/server.ts';

test('ssm publish then promote to latest: refused while the AMI is private, done once it is public, forced with a note', async (t) => {
  const project = await makeVariantProject();
  const fake = await startFakeAws();
  t.teardown(() => fake.close());
  const env = { ...fake.env, BRL_AWS_POLL_INTERVAL_MS: '1' };
  await writeFile(join(project.projectDir, 'Infra.toml'), '[aws]\nregions = ["us-west-2"]\nssm_prefix = "/brl/test"\n');
  const run = (args: string[]) => brl(args, { cwd: project.projectDir, env });

  t.is((await run(['ami', 'publish', '--variant', 'aws-dev', '--no-progress'])).exitCode, 0);
  const output = join(project.projectDir, 'ssm-params.json');
  const published = await run(['ssm', 'publish', '--variant', 'aws-dev', '--ssm-parameter-output', output]);
  t.is(published.exitCode, 0, published.stderr);
  const [image] = fake.state.imagesIn('us-west-2');
  t.deepEqual(JSON.parse(await readFile(output, 'utf8')), {
    'us-west-2': { '/brl/test/aws-dev/x86_64/1.0.0-abcdef12/image_id': image?.id, '/brl/test/aws-dev/x86_64/1.0.0-abcdef12/image_version': '1.0.0-abcdef12' },
  });

  const promote = ['ssm', 'promote', '--variant', 'aws-dev', '--source', '1.0.0-abcdef12', '--target', 'latest'];
  const refused = await run([...promote, '--json']);
  t.is(refused.exitCode, 6);
  t.like(JSON.parse(refused.stdout), { error: { code: 'PROMOTE_UNSAFE_AMI' } });
  t.is(fake.state.parameters.get('us-west-2\0/brl/test/aws-dev/x86_64/latest/image_id'), undefined);

  const forced = await run([...promote, '--force']);
  t.is(forced.exitCode, 0, forced.stderr);
  t.regex(forced.stderr, new RegExp(`--force: promoted although ${image?.id} in us-west-2 is not public`));
  t.is(fake.state.parameters.get('us-west-2\0/brl/test/aws-dev/x86_64/latest/image_id')?.value, image?.id);

  // Publishing "latest" directly would change latest/image_version (1.0.0-abcdef12 → latest): refused.
  const clobber = await run(['ssm', 'publish', '--variant', 'aws-dev', '--version', 'latest', '--json']);
  t.is(clobber.exitCode, 9);
  t.regex((JSON.parse(clobber.stdout) as { error: { message: string } }).error.message, /\/brl\/test\/aws-dev\/x86_64\/latest\/image_version in us-west-2 \(1\.0\.0-abcdef12\)/);
  t.is(fake.state.parameters.get('us-west-2\0/brl/test/aws-dev/x86_64/latest/image_version')?.value, '1.0.0-abcdef12');
});
