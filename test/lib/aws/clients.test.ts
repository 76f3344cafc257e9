import test from 'ava';
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { GetParametersCommand } from '@aws-sdk/client-ssm';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AwsClients } from '../../../src/lib/aws/clients.ts';
import { loadAwsInfra, resolveRegions } from '../../../src/lib/aws/infra.ts';
import { withFakeAws } from '../../fakes/aws/harness.ts';
import { startFakeAws } from '../../fakes/aws/server.ts';

test.serial('one cached client per service and region', (t) => {
  const clients = new AwsClients();
  t.is(clients.ec2('us-west-2'), clients.ec2('us-west-2'));
  t.not(clients.ec2('us-west-2'), clients.ec2('us-east-1'));
  t.not(clients.ssm('us-west-2') as unknown, clients.ec2('us-west-2') as unknown);
  clients.destroy();
});

test.serial('AWS_ENDPOINT_URL_<SERVICE> overrides AWS_ENDPOINT_URL for that service only', async (t) => {
  const ssmEndpoint = await startFakeAws();
  try {
    await withFakeAws({}, async (fake, clients) => {
      process.env.AWS_ENDPOINT_URL_SSM = ssmEndpoint.url;
      const scoped = new AwsClients();
      try {
        await scoped.ec2('eu-west-1').send(new DescribeImagesCommand({ Owners: ['self'] }));
        await scoped.ssm('eu-west-1').send(new GetParametersCommand({ Names: ['/x'] }));
      } finally {
        scoped.destroy();
      }
      t.is(fake.state.count('DescribeImages', 'eu-west-1'), 1);
      t.is(fake.state.count('GetParameters'), 0);
      t.is(ssmEndpoint.state.count('GetParameters', 'eu-west-1'), 1);
    });
  } finally {
    await ssmEndpoint.close();
  }
});

test.serial('regions come from --regions, then Infra.toml, then AWS_REGION; the first is the base region', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'brl-infra-'));
  const path = join(dir, 'Infra.toml');
  await writeFile(path, '[repo.default]\nroot_role_url = "x"\n\n[aws]\nregions = ["us-east-1", "eu-west-1"]\nssm_prefix = "/brl"\n\n[aws.region.eu-west-1]\nrole = "arn:aws:iam::444455556666:role/publish"\n');
  const infra = await loadAwsInfra(path);
  t.deepEqual(infra, { regions: ['us-east-1', 'eu-west-1'], ssmPrefix: '/brl', regionRoles: { 'eu-west-1': 'arn:aws:iam::444455556666:role/publish' } });
  t.deepEqual(await resolveRegions(['ap-south-1', 'ap-south-1', 'us-west-2'], infra), ['ap-south-1', 'us-west-2']);
  t.deepEqual(await resolveRegions(undefined, infra), ['us-east-1', 'eu-west-1']);
  const saved = process.env.AWS_REGION;
  process.env.AWS_REGION = 'ca-central-1';
  try {
    t.deepEqual(await resolveRegions(undefined, await loadAwsInfra(join(dir, 'missing.toml'))), ['ca-central-1']);
  } finally {
    if (saved === undefined) delete process.env.AWS_REGION;
    else process.env.AWS_REGION = saved;
  }
});

test.serial('Infra.toml [aws] rejects unknown keys and bad roles with file, line and key', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'brl-infra-'));
  const path = join(dir, 'Infra.toml');
  await writeFile(path, '[aws]\nregions = ["us-west-2"]\nssm_prefx = "/brl"\n');
  await t.throwsAsync(loadAwsInfra(path), { message: new RegExp(`${path}:3: aws.ssm_prefx: unknown key`) });
  await writeFile(path, '[aws]\n[aws.region.us-west-2]\nrole = "publisher"\n');
  await t.throwsAsync(loadAwsInfra(path), { message: /Infra\.toml:3: aws\.region\.us-west-2\.role: "publisher" is not an IAM role ARN/ });
});
