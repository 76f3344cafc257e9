// The AWS fake refuses what EC2 and SSM refuse, with their codes, so a wrong request from brl fails a test.
// Every request here is sent by the real SDK clients; values their types would not allow go in before signing.
import test from 'ava';
import { EBSClient, StartSnapshotCommand } from '@aws-sdk/client-ebs';
import {
  DescribeImageAttributeCommand, DescribeImagesCommand, EC2Client, RegisterImageCommand,
  type ArchitectureValues, type BootModeValues, type ImageAttributeName, type RegisterImageCommandInput, type VolumeType,
} from '@aws-sdk/client-ec2';
import { GetParametersCommand, PutParameterCommand, SSMClient, type ParameterType } from '@aws-sdk/client-ssm';
import { changeBodyBeforeSigning } from '../../fakes/aws/middleware.ts';
import { refusal } from '../../fakes/aws/harness.ts';
import { startFakeAws, type FakeAws } from '../../fakes/aws/server.ts';
import { fakeCredentials } from '../../fakes/aws/sigv4.ts';

const region = 'us-west-2';

async function withFake(t: { teardown(fn: () => Promise<void>): void }, options: Parameters<typeof startFakeAws>[0] = {}): Promise<FakeAws> {
  const fake = await startFakeAws(options);
  t.teardown(() => fake.close());
  return fake;
}

const config = (fake: FakeAws) => ({ endpoint: fake.url, region, credentials: fakeCredentials, maxAttempts: 1 });


/** A completed 1 GiB snapshot and the parameters brl registers an AMI with, ready to be spoiled one at a time. */
async function registrable(fake: FakeAws): Promise<RegisterImageCommandInput> {
  const { SnapshotId } = await new EBSClient(config(fake)).send(new StartSnapshotCommand({ VolumeSize: 1 }));
  const snapshot = fake.state.snapshots.get(SnapshotId ?? '');
  if (snapshot) snapshot.state = 'completed';
  return {
    Name: 'brl-validation', Architecture: 'x86_64', VirtualizationType: 'hvm', RootDeviceName: '/dev/xvda', EnaSupport: true, SriovNetSupport: 'simple',
    BootMode: 'uefi-preferred', BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId, VolumeSize: 2, VolumeType: 'gp2', DeleteOnTermination: true } }],
  };
}

test('RegisterImage refuses UefiData over 64 KiB; DescribeImageAttribute answers bootMode and uefiData as registered, and refuses an unknown attribute', async (t) => {
  const fake = await withFake(t);
  const ec2 = new EC2Client(config(fake));
  const input = { ...(await registrable(fake)), BootMode: 'uefi' as BootModeValues };
  const tooLarge = await refusal(ec2.send(new RegisterImageCommand({ ...input, UefiData: 'A'.repeat(64 * 1024 + 4) })));
  t.like(tooLarge, { name: 'InvalidParameterValue', status: 400 });
  t.regex(tooLarge.message, /UefiData is invalid\. The maximum length is 65536/);
  const { ImageId } = await ec2.send(new RegisterImageCommand({ ...input, UefiData: 'QU1aTlVFRkk=' }));
  const uefiData = await ec2.send(new DescribeImageAttributeCommand({ ImageId, Attribute: 'uefiData' }));
  const bootMode = await ec2.send(new DescribeImageAttributeCommand({ ImageId, Attribute: 'bootMode' }));
  t.deepEqual([uefiData.UefiData?.Value, bootMode.BootMode?.Value], ['QU1aTlVFRkk=', 'uefi']);
  const unknown = await refusal(ec2.send(new DescribeImageAttributeCommand({ ImageId, Attribute: 'nonsense' as ImageAttributeName })));
  t.like(unknown, { name: 'InvalidParameterValue', status: 400 });
});

test('RegisterImage refuses an unknown Architecture, VolumeType and BootMode with InvalidParameterValue naming the parameter', async (t) => {
  const fake = await withFake(t);
  const ec2 = new EC2Client(config(fake));
  const input = await registrable(fake);
  const spoiled: [string, RegisterImageCommandInput, RegExp][] = [
    ['Architecture', { ...input, Architecture: 'amd64' as ArchitectureValues }, /Value \(amd64\) for parameter Architecture is invalid/],
    ['BootMode', { ...input, BootMode: 'bios' as BootModeValues }, /Value \(bios\) for parameter BootMode is invalid/],
    ['VolumeType', { ...input, BlockDeviceMappings: [{ ...input.BlockDeviceMappings![0], Ebs: { ...input.BlockDeviceMappings![0]!.Ebs, VolumeType: 'gp9' as VolumeType } }] },
      /Value \(gp9\) for parameter BlockDeviceMapping\.1\.Ebs\.VolumeType is invalid/],
  ];
  for (const [what, request, message] of spoiled) {
    const error = await refusal(ec2.send(new RegisterImageCommand(request)));
    t.like(error, { name: 'InvalidParameterValue', status: 400 }, what);
    t.regex(error.message, message);
  }
  t.is(fake.state.images.size, 0);
  // The unspoiled request registers, so each refusal above is the spoiled value's.
  t.regex((await ec2.send(new RegisterImageCommand(input))).ImageId ?? '', /^ami-[0-9a-f]{17}$/);
});

test('RegisterImage refuses a non-boolean EnaSupport and an unknown parameter (UnknownParameter)', async (t) => {
  const fake = await withFake(t);
  const input = await registrable(fake);
  const notBoolean = new EC2Client(config(fake));
  changeBodyBeforeSigning(notBoolean, (body) => body.replace('EnaSupport=true', 'EnaSupport=yes'));
  const error = await refusal(notBoolean.send(new RegisterImageCommand(input)));
  t.like(error, { name: 'InvalidParameterValue', status: 400 });
  t.regex(error.message, /Value \(yes\) for parameter EnaSupport is invalid/);
  const unknown = new EC2Client(config(fake));
  changeBodyBeforeSigning(unknown, (body) => `${body}&EnaSuport=true`);
  t.like(await refusal(unknown.send(new RegisterImageCommand(input))), { name: 'UnknownParameter', status: 400, message: 'The parameter EnaSuport is not recognized' });
  t.is(fake.state.images.size, 0);
});

test('DescribeImages refuses an unknown filter instead of returning an empty set', async (t) => {
  const fake = await withFake(t);
  const ec2 = new EC2Client(config(fake));
  t.like(await refusal(ec2.send(new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'archtecture', Values: ['x86_64'] }] }))), {
    name: 'InvalidParameterValue', status: 400, message: "The filter 'archtecture' is invalid",
  });
  t.deepEqual((await ec2.send(new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'architecture', Values: ['x86_64'] }] }))).Images, []);
});

test('PutParameter refuses an unknown Type, an empty value and names under the reserved aws and ssm prefixes', async (t) => {
  const fake = await withFake(t);
  const ssm = new SSMClient(config(fake));
  const put = (Name: string, Value: string, Type = 'String') => refusal(ssm.send(new PutParameterCommand({ Name, Value, Type: Type as ParameterType })));
  const badType = await put('/brl/x', 'v', 'Bogus');
  t.like(badType, { name: 'ValidationException', status: 400 });
  t.regex(badType.message, /Value 'Bogus' at 'type' failed to satisfy constraint: Member must satisfy enum value set: \[String, StringList, SecureString\]/);
  t.regex((await put('/brl/x', '')).message, /Value '' at 'value' failed to satisfy constraint/);
  for (const name of ['/aws/service/brl/x', 'aws-brl', '/SSM/x', 'ssmbrl']) {
    const error = await put(name, 'v');
    t.like(error, { name: 'ValidationException', status: 400 }, name);
    t.regex(error.message, /can't be prefixed with "aws" or "ssm"/);
  }
  t.like(await put('brl/relative', 'v'), { name: 'ValidationException' }, 'a path must start with /');
  t.is(fake.state.parameters.size, 0);
});

test('PutParameter checks DataType: unknown types are refused, aws:ec2:image takes only AMI ids, and the data type is kept', async (t) => {
  const fake = await withFake(t);
  const ssm = new SSMClient(config(fake));
  const put = (DataType: string, Value: string) => ssm.send(new PutParameterCommand({ Name: '/brl/image', Value, Type: 'String', DataType, Overwrite: true }));
  const unknown = await refusal(put('aws:ec2:ami', 'ami-0123456789abcdef0'));
  t.like(unknown, { name: 'ValidationException', status: 400 });
  t.regex(unknown.message, /data type is not supported: aws:ec2:ami/);
  const notAmi = await refusal(put('aws:ec2:image', 'bottlerocket-1.0.0'));
  t.like(notAmi, { name: 'ValidationException', status: 400 });
  t.regex(notAmi.message, /bottlerocket-1\.0\.0, is not in a valid format for the aws:ec2:image data type/);
  t.is(fake.state.parameters.size, 0);
  await put('aws:ec2:image', 'ami-0123456789abcdef0');
  const { Parameters = [] } = await ssm.send(new GetParametersCommand({ Names: ['/brl/image'] }));
  t.like(Parameters[0], { Value: 'ami-0123456789abcdef0', DataType: 'aws:ec2:image' });
});

test('in AWS-publisher mode the fake accepts names under /aws/, which other accounts are refused', async (t) => {
  const fake = await withFake(t, { reservedParameterNames: true });
  const ssm = new SSMClient(config(fake));
  await ssm.send(new PutParameterCommand({ Name: '/aws/service/brl/x', Value: 'v', Type: 'String' }));
  t.is(fake.state.parameters.get(`${region}\0/aws/service/brl/x`)?.value, 'v');
});
