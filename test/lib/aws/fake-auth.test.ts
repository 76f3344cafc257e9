// The AWS fake checks SigV4 as AWS does, so a test signed with the wrong credentials, or a request changed after
// signing, fails instead of passing against a lenient endpoint.
import test from 'ava';
import { EBSClient, PutSnapshotBlockCommand, StartSnapshotCommand } from '@aws-sdk/client-ebs';
import { DescribeImagesCommand, EC2Client, RegisterImageCommand } from '@aws-sdk/client-ec2';
import { GetParametersCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { createHash } from 'node:crypto';
import { changeAfterSigning, forgeSignature, type WireRequest } from '../../fakes/aws/middleware.ts';
import { refusal } from '../../fakes/aws/harness.ts';
import { startFakeAws, type FakeAws } from '../../fakes/aws/server.ts';
import { fakeCredentials } from '../../fakes/aws/sigv4.ts';

interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

function sdkClients(fake: FakeAws, credentials: Credentials) {
  const config = { endpoint: fake.url, region: 'us-west-2', credentials, maxAttempts: 1 };
  return { ec2: new EC2Client(config), ebs: new EBSClient(config), ssm: new SSMClient(config), sts: new STSClient(config) };
}

async function withFake(t: { teardown(fn: () => Promise<void>): void }): Promise<FakeAws> {
  const fake = await startFakeAws();
  t.teardown(() => fake.close());
  return fake;
}


const mismatch = /^The request signature we calculated does not match the signature you provided/;

test('a client with a wrong secret is refused by EC2, EBS, SSM and STS, each with its own code and status', async (t) => {
  const fake = await withFake(t);
  const wrong = sdkClients(fake, { accessKeyId: fakeCredentials.accessKeyId, secretAccessKey: 'wrong-secret' });
  const ec2 = await refusal(wrong.ec2.send(new DescribeImagesCommand({ Owners: ['self'] })));
  t.like(ec2, { name: 'SignatureDoesNotMatch', status: 403 });
  t.regex(ec2.message, mismatch);
  t.like(await refusal(wrong.ebs.send(new StartSnapshotCommand({ VolumeSize: 1 }))), { name: 'InvalidSignatureException', status: 403 });
  t.like(await refusal(wrong.ssm.send(new GetParametersCommand({ Names: ['/x'] }))), { name: 'InvalidSignatureException', status: 400 });
  t.like(await refusal(wrong.sts.send(new GetCallerIdentityCommand({}))), { name: 'SignatureDoesNotMatch', status: 403 });
  t.is(fake.state.snapshots.size, 0);
  t.deepEqual([...fake.state.requestCounts.keys()], [], 'no refused request reached an operation');
  // The same calls with the right secret go through.
  const right = sdkClients(fake, fakeCredentials);
  t.is((await right.sts.send(new GetCallerIdentityCommand({}))).Account, fake.state.options.accountId);
  t.truthy((await right.ebs.send(new StartSnapshotCommand({ VolumeSize: 1 }))).SnapshotId);
});

test('an access key the endpoint does not know is refused: EC2 AuthFailure, STS InvalidClientTokenId, SSM and EBS UnrecognizedClientException', async (t) => {
  const fake = await withFake(t);
  const stranger = sdkClients(fake, { accessKeyId: 'AKIAUNKNOWNUNKNOWN00', secretAccessKey: fakeCredentials.secretAccessKey });
  t.like(await refusal(stranger.ec2.send(new DescribeImagesCommand({ Owners: ['self'] }))), { name: 'AuthFailure', status: 401 });
  t.like(await refusal(stranger.sts.send(new GetCallerIdentityCommand({}))), { name: 'InvalidClientTokenId', status: 403 });
  t.like(await refusal(stranger.ssm.send(new GetParametersCommand({ Names: ['/x'] }))), { name: 'UnrecognizedClientException', status: 400 });
  t.like(await refusal(stranger.ebs.send(new StartSnapshotCommand({ VolumeSize: 1 }))), { name: 'UnrecognizedClientException', status: 403 });
});

test('a forged signature is refused by RegisterImage, PutParameter and PutSnapshotBlock, and changes nothing', async (t) => {
  const fake = await withFake(t);
  const { ebs } = sdkClients(fake, fakeCredentials);
  const { SnapshotId } = await ebs.send(new StartSnapshotCommand({ VolumeSize: 1 }));
  const forged = sdkClients(fake, fakeCredentials);
  for (const client of Object.values(forged)) changeAfterSigning(client, forgeSignature);

  const register = await refusal(forged.ec2.send(new RegisterImageCommand({
    Name: 'forged', Architecture: 'x86_64', RootDeviceName: '/dev/xvda',
    BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId } }],
  })));
  t.like(register, { name: 'SignatureDoesNotMatch', status: 403 });
  t.regex(register.message, mismatch);
  t.like(await refusal(forged.ssm.send(new PutParameterCommand({ Name: '/brl/forged', Value: 'v', Type: 'String' }))), { name: 'InvalidSignatureException', status: 400 });
  const block = Buffer.alloc(fake.state.options.blockSize, 1);
  t.like(await refusal(forged.ebs.send(new PutSnapshotBlockCommand({
    SnapshotId, BlockIndex: 0, BlockData: block, DataLength: block.length,
    Checksum: createHash('sha256').update(block).digest('base64'), ChecksumAlgorithm: 'SHA256',
  }))), { name: 'InvalidSignatureException', status: 403 });

  t.is(fake.state.images.size, 0);
  t.is(fake.state.parameters.size, 0);
  t.is(fake.state.snapshots.get(SnapshotId ?? '')?.blocks.size, 0);
});

/** Swaps `good` for `evil` in a signed body (same length, so only the hashes can tell); optionally re-hashes it. */
function alterBody(rehash: boolean) {
  return (request: WireRequest) => {
    const sent = request.body as string | Uint8Array;
    const text = typeof sent === 'string' ? sent : Buffer.from(sent.buffer, sent.byteOffset, sent.byteLength).toString('utf8');
    const body = text.replace('good', 'evil');
    request.body = body;
    if (rehash && request.headers['x-amz-content-sha256']) request.headers['x-amz-content-sha256'] = createHash('sha256').update(body).digest('hex');
  };
}

test('a body changed after signing is refused by EC2 (Query) and SSM (JSON): the signature covers the payload hash', async (t) => {
  const fake = await withFake(t);
  // The SDK sends the payload hash as a signed header: a body that no longer matches it is refused...
  const altered = sdkClients(fake, fakeCredentials);
  changeAfterSigning(altered.ec2, alterBody(false));
  changeAfterSigning(altered.ssm, alterBody(false));
  t.like(await refusal(altered.ec2.send(new DescribeImagesCommand({ Filters: [{ Name: 'name', Values: ['good'] }] }))), { name: 'XAmzContentSHA256Mismatch', status: 400 });
  t.like(await refusal(altered.ssm.send(new PutParameterCommand({ Name: '/brl/good', Value: 'good', Type: 'String' }))), { name: 'XAmzContentSHA256Mismatch', status: 400 });
  // ...and so is a new hash to go with it, since the signature no longer matches.
  const rehashed = sdkClients(fake, fakeCredentials);
  changeAfterSigning(rehashed.ec2, alterBody(true));
  changeAfterSigning(rehashed.ssm, alterBody(true));
  t.like(await refusal(rehashed.ec2.send(new DescribeImagesCommand({ Filters: [{ Name: 'name', Values: ['good'] }] }))), { name: 'SignatureDoesNotMatch', status: 403 });
  t.like(await refusal(rehashed.ssm.send(new PutParameterCommand({ Name: '/brl/good', Value: 'good', Type: 'String' }))), { name: 'InvalidSignatureException', status: 400 });
  t.is(fake.state.parameters.size, 0);
});
