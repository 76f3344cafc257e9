import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { readAmisFile, writeAmisFile, type AmisFile } from '../../../src/lib/aws/amis-file.ts';
import type { AwsClients } from '../../../src/lib/aws/clients.ts';
import { shareAmi } from '../../../src/lib/aws/share-ami.ts';
import { publishSsmParameters } from '../../../src/lib/aws/ssm-publish.ts';
import { defaultTemplates } from '../../../src/lib/aws/ssm-templates.ts';
import { expectedUefiCertificates, validateAmis, type ExpectedImage } from '../../../src/lib/aws/validate-ami.ts';
import { validateSsmParameters } from '../../../src/lib/aws/validate-ssm.ts';
import { validationFailure, validationTable, type ValidationResult } from '../../../src/lib/aws/validation.ts';
import { ExitCode } from '../../../src/lib/core/errors.ts';
import { secureBootUefiData } from '../../../src/lib/secure-boot/aws-uefi-data.ts';
import { initKeySet, loadFirmwareCertificates } from '../../../src/lib/secure-boot/key-set.ts';
import { addPublishedImage } from '../../fakes/aws/fixtures.ts';
import { withFakeAws } from '../../fakes/aws/harness.ts';
import type { FakeAws } from '../../fakes/aws/server.ts';

const regions = ['us-west-2', 'us-east-1'];
const name = 'bottlerocket-aws-dev-x86_64-v1.0.0-abcdef12';
const expected: ExpectedImage = { architecture: 'x86_64', enaSupport: true, bootMode: null };

/** AMIs in `regions`, made public and shared with one account by the real grant flow; amis.json as grant rewrote it. */
async function publishedAndGranted(fake: FakeAws, clients: AwsClients, inRegions = regions): Promise<{ amis: AmisFile; amisPath: string }> {
  const amisPath = join(await mkdtemp(join(tmpdir(), 'brl-validate-')), 'amis.json');
  const initial: AmisFile = Object.fromEntries(inRegions.map((region) => [region, { id: addPublishedImage(fake.state, region, name), name, public: false, launch_permissions: [] }]));
  await writeAmisFile(amisPath, initial);
  const principals = { userIds: ['444455556666'], groupNames: ['all'], organizationArns: [], organizationalUnitArns: [] };
  await shareAmi({ clients, operation: 'grant', amis: initial, amisPath, regions: undefined, principals, poll: { intervalMs: 1, maxAttempts: 5 }, progress: 'silent' });
  return { amis: await readAmisFile(amisPath), amisPath };
}

function validate(clients: AwsClients, amis: AmisFile, amisPath: string, overrides: { expected?: ExpectedImage; concurrency?: number } = {}) {
  return validateAmis({ clients, amis, amisPath, regions: undefined, expected: overrides.expected ?? expected, ...(overrides.concurrency === undefined ? {} : { concurrency: overrides.concurrency }) });
}

function failedChecks(result: ValidationResult): [string, string, string, string][] {
  return result.regions.flatMap((r) => r.checks.filter((c) => !c.ok).map((c): [string, string, string, string] => [r.region, c.field, c.expected, c.actual]));
}

test.serial('AMIs as published and granted validate in every region, every field ok', async (t) => {
  await withFakeAws({}, async (fake, clients) => {
    const { amis, amisPath } = await publishedAndGranted(fake, clients);
    const result = await validate(clients, amis, amisPath);
    t.true(result.ok);
    t.deepEqual(result.regions.map((r) => [r.region, r.status]), [['us-east-1', 'ok'], ['us-west-2', 'ok']]);
    const east = result.regions[0];
    const snapshotId = fake.state.images.get(amis['us-east-1']?.id ?? '')?.blockDevices[0]?.snapshotId;
    t.deepEqual(east?.checks.map((c) => [c.field, c.actual, c.ok]), [
      ['state', 'available', true],
      ['name', name, true],
      ['architecture', 'x86_64', true],
      ['boot-mode', '(none)', true],
      ['ena-support', 'true', true],
      ['public', 'true', true],
      ['launch-permissions', 'group:all, userid:444455556666', true],
      [`create-volume-permissions ${snapshotId}`, 'group:all, userid:444455556666', true],
    ]);
    t.is(validationFailure('AMIs', result, 'hint'), undefined);
    const table = validationTable(result, 'FIELD');
    t.regex(table[0] ?? '', /^REGION\s+FIELD\s+EXPECTED\s+ACTUAL\s+RESULT$/);
    t.is(table.length, 1 + 16);
    t.true(table.slice(1).every((line) => / ok$/.test(line)));
  });
});

test.serial('an image still pending is a mismatch naming the region and the state field', async (t) => {
  await withFakeAws({}, async (fake, clients) => {
    const { amis, amisPath } = await publishedAndGranted(fake, clients);
    const image = fake.state.images.get(amis['us-west-2']?.id ?? '');
    if (image) Object.assign(image, { state: 'pending', describesUntilAvailable: 1000 });
    const result = await validate(clients, amis, amisPath);
    t.false(result.ok);
    t.deepEqual(result.regions.map((r) => [r.region, r.status]), [['us-east-1', 'ok'], ['us-west-2', 'mismatch']]);
    t.deepEqual(failedChecks(result), [['us-west-2', 'state', 'available', 'pending']]);
    const failure = validationFailure('AMIs', result, 'hint');
    t.is(failure?.exitCode, ExitCode.verifyFailed);
    t.is(failure?.code, 'VALIDATION_MISMATCH');
    t.regex(failure?.message ?? '', /^AMIs do not match in 1 place\(s\): us-west-2: state is pending, expected available$/);
    t.regex(validationTable(result, 'FIELD').find((line) => line.startsWith('us-west-2') && line.includes('state')) ?? '', /available\s+pending\s+MISMATCH$/);
  });
});

test.serial('a launch permission other than amis.json records is a mismatch, on the AMI and on its snapshot', async (t) => {
  await withFakeAws({}, async (fake, clients) => {
    const { amis, amisPath } = await publishedAndGranted(fake, clients);
    // Someone revoked public access to the AMI behind brl's back, and added an account to the snapshot.
    const image = fake.state.images.get(amis['us-east-1']?.id ?? '');
    if (image) image.launchPermissions = image.launchPermissions.filter((p) => p.group !== 'all');
    const snapshotId = image?.blockDevices[0]?.snapshotId ?? '';
    fake.state.snapshots.get(snapshotId)?.createVolumeUserIds.add('777788889999');
    const result = await validate(clients, amis, amisPath);
    t.deepEqual(failedChecks(result), [
      ['us-east-1', 'public', 'true', 'false'],
      ['us-east-1', 'launch-permissions', 'group:all, userid:444455556666', 'userid:444455556666'],
      ['us-east-1', `create-volume-permissions ${snapshotId}`, 'group:all, userid:444455556666', 'group:all, userid:444455556666, userid:777788889999'],
    ]);
    t.is(result.regions.find((r) => r.region === 'us-west-2')?.status, 'ok');
  });
});

test.serial("name, architecture, boot mode and ENA support are compared with the variant's settings; an unknown id is not found", async (t) => {
  await withFakeAws({}, async (fake, clients) => {
    const { amis, amisPath } = await publishedAndGranted(fake, clients);
    const secureBootArm: ExpectedImage = { architecture: 'arm64', enaSupport: false, bootMode: 'uefi-preferred' };
    const renamed: AmisFile = { ...amis, 'us-west-2': { ...(amis['us-west-2'] as AmisFile[string]), name: 'other-name' } };
    const result = await validate(clients, renamed, amisPath, { expected: secureBootArm });
    t.deepEqual(failedChecks(result).filter(([region]) => region === 'us-west-2'), [
      ['us-west-2', 'name', 'other-name', name],
      ['us-west-2', 'architecture', 'arm64', 'x86_64'],
      ['us-west-2', 'boot-mode', 'uefi-preferred', '(none)'],
      ['us-west-2', 'ena-support', 'false', 'true'],
    ]);
    // Outside a project only the architecture is known: boot mode and ENA support are not checked.
    const archOnly = await validate(clients, amis, amisPath, { expected: { architecture: 'x86_64' } });
    t.true(archOnly.ok);
    t.false(archOnly.regions.some((r) => r.checks.some((c) => c.field === 'boot-mode' || c.field === 'ena-support')));

    fake.state.images.delete(amis['us-east-1']?.id ?? '');
    const gone = await validate(clients, amis, amisPath);
    t.deepEqual(failedChecks(gone), [['us-east-1', 'id', amis['us-east-1']?.id ?? '', 'not found']]);
  });
});

test.serial("a signed variant's UefiData must hold the key set's PK, KEK and db: read back through DescribeImageAttribute, each compared", async (t) => {
  const keysDir = join(await mkdtemp(join(tmpdir(), 'brl-validate-keys-')), 'keys');
  t.teardown(() => rm(dirname(keysDir), { recursive: true, force: true }));
  const certificates = await loadFirmwareCertificates((await initKeySet(keysDir, { organization: 'brl test', validDays: 30, rsaBits: 2048 })).dir);
  const signed: ExpectedImage = { ...expected, bootMode: 'uefi', uefiCertificates: expectedUefiCertificates(certificates) };
  await withFakeAws({}, async (fake, clients) => {
    const amisPath = join(dirname(keysDir), 'amis.json');
    const swapped = secureBootUefiData({ ...certificates, pk: certificates.kek, kek: certificates.pk }, undefined);
    const images = {
      'us-west-2': secureBootUefiData(certificates, new Date('2026-01-01T00:00:00Z')),
      'us-east-1': swapped,
      'eu-west-1': undefined,
      'eu-central-1': 'QU1aTlVFRkkAAAAAAAAAAA==',
    };
    const amis: AmisFile = Object.fromEntries(Object.entries(images).map(([region, uefiData]) => [region, { id: addPublishedImage(fake.state, region, name, { bootMode: 'uefi', uefiData }), name }]));
    const result = await validate(clients, amis, amisPath, { expected: signed });
    t.deepEqual(result.regions.map((r) => [r.region, r.status]), [['eu-central-1', 'mismatch'], ['eu-west-1', 'mismatch'], ['us-east-1', 'mismatch'], ['us-west-2', 'ok']]);
    t.deepEqual(result.regions.find((r) => r.region === 'us-west-2')?.checks.filter((c) => c.field.startsWith('uefi-data')).map((c) => [c.field, c.actual]), [
      ['uefi-data PK', signed.uefiCertificates?.pk],
      ['uefi-data KEK', signed.uefiCertificates?.kek],
      ['uefi-data db', signed.uefiCertificates?.db],
    ]);
    const failed = failedChecks(result);
    t.deepEqual(failed.filter(([region]) => region === 'us-east-1').map(([, field, , actual]) => [field, actual]), [
      ['uefi-data PK', signed.uefiCertificates?.kek],
      ['uefi-data KEK', signed.uefiCertificates?.pk],
    ]);
    t.deepEqual(failed.filter(([region]) => region === 'eu-west-1').map(([, field, , actual]) => [field, actual]), [['uefi-data PK', '(none)'], ['uefi-data KEK', '(none)'], ['uefi-data db', '(none)']]);
    t.regex(failed.find(([region]) => region === 'eu-central-1')?.[3] ?? '', /^unreadable \(the UEFI data of ami-\w+ is not an EC2 UEFI variable store: CRC32C/);
    t.is(fake.state.count('DescribeImageAttribute'), 4);
  });
});

test.serial('a throttling region recovers through the SDK retries and validates', async (t) => {
  await withFakeAws({}, async (fake, clients) => {
    const { amis, amisPath } = await publishedAndGranted(fake, clients);
    const before = fake.state.count('DescribeImages', 'us-east-1');
    fake.state.faults.push({ kind: 'throttle', times: 2, region: 'us-east-1' });
    const result = await validate(clients, amis, amisPath);
    t.true(result.ok, JSON.stringify(result.regions));
    t.is(fake.state.faults[0]?.times, 0, 'both throttling answers were given');
    t.is(fake.state.count('DescribeImages', 'us-east-1') - before, 3, 'two throttled attempts, then the answer');
  });
});

test.serial('a region that keeps throttling beyond the retries is reported by name; the other regions are still validated', async (t) => {
  await withFakeAws({}, async (fake, clients) => {
    const { amis, amisPath } = await publishedAndGranted(fake, clients);
    fake.state.faults.push({ operation: 'DescribeImages', kind: 'throttle', times: 1000, region: 'us-east-1' });
    const result = await validate(clients, amis, amisPath);
    t.deepEqual(result.regions.map((r) => [r.region, r.status]), [['us-east-1', 'unreachable'], ['us-west-2', 'ok']]);
    t.is(result.regions[0]?.error, 'RequestLimitExceeded: Request limit exceeded. (after 3 attempts)');
    const failure = validationFailure('AMIs', result, 'hint');
    t.is(failure?.exitCode, ExitCode.failure);
    t.is(failure?.code, 'VALIDATION_INCOMPLETE');
    t.regex(failure?.message ?? '', /us-east-1: cannot validate: RequestLimitExceeded/);
    t.regex(validationTable(result, 'FIELD')[1] ?? '', /^us-east-1\s+-\s+-\s+-\s+unreachable: RequestLimitExceeded/);
  });
});

test.serial('a region the credentials cannot reach says which region and why', async (t) => {
  await withFakeAws({ disabledRegions: new Set(['ap-east-1']) }, async (fake, clients) => {
    const { amis, amisPath } = await publishedAndGranted(fake, clients);
    const withDisabled: AmisFile = { ...amis, 'ap-east-1': { id: 'ami-0123456789abcdef0', name, public: true } };
    const result = await validate(clients, withDisabled, amisPath);
    const disabled = result.regions.find((r) => r.region === 'ap-east-1');
    t.is(disabled?.status, 'unreachable');
    t.is(disabled?.error, 'AWS refused the request (AuthFailure): AWS was not able to validate the provided access credentials');
    t.deepEqual(result.regions.filter((r) => r.status === 'ok').map((r) => r.region), regions.toSorted());
    t.regex(validationFailure('AMIs', result, 'hint')?.hint ?? '', /enabled for the account/);
  });
});

test.serial('regions are validated in parallel, at most `concurrency` at a time', async (t) => {
  const four = ['us-west-2', 'us-east-1', 'eu-west-1', 'ap-south-1'];
  await withFakeAws({ latencyMs: 20 }, async (fake, clients) => {
    const { amis, amisPath } = await publishedAndGranted(fake, clients, four);
    const regionOrder = async (concurrency: number) => {
      fake.state.requestLog.length = 0;
      t.true((await validate(clients, amis, amisPath, { concurrency })).ok);
      return fake.state.requestLog.map((r) => r.region);
    };
    // One at a time: each region's requests finish before the next region's start.
    const serial = await regionOrder(1);
    t.deepEqual(serial.filter((region, i) => region !== serial[i - 1]), Object.keys(amis).sort());
    // Three at a time: the first three requests go to three regions at once, the fourth region waits for a free lane.
    const parallel = await regionOrder(3);
    t.is(new Set(parallel.slice(0, 3)).size, 3);
    t.false(parallel.slice(0, 3).includes('us-west-2'));
  });
});

test.serial('SSM parameters as published validate; a changed value and a missing parameter name the region and parameter', async (t) => {
  await withFakeAws({}, async (fake, clients) => {
    const amis: AmisFile = Object.fromEntries(regions.map((region) => [region, { id: addPublishedImage(fake.state, region, name), name }]));
    const options = { clients, amis, amisPath: 'amis.json', regions: undefined, variant: 'aws-dev', arch: 'x86_64', imageVersion: '1.0.0-abcdef12', templates: defaultTemplates, prefix: '/brl/test' };
    await publishSsmParameters({ ...options, allowClobber: false, allowPrivateImages: false });
    const good = await validateSsmParameters(options);
    t.true(good.ok);
    t.deepEqual(good.regions.map((r) => [r.region, r.checks.map((c) => [c.field, c.actual, c.ok])]), regions.toSorted().map((region) => [region, [
      ['/brl/test/aws-dev/x86_64/1.0.0-abcdef12/image_id', amis[region]?.id, true],
      ['/brl/test/aws-dev/x86_64/1.0.0-abcdef12/image_version', '1.0.0-abcdef12', true],
    ]]));

    const changed = fake.state.parameters.get('us-west-2\0/brl/test/aws-dev/x86_64/1.0.0-abcdef12/image_id');
    if (changed) changed.value = 'ami-0fedcba9876543210';
    fake.state.parameters.delete('us-east-1\0/brl/test/aws-dev/x86_64/1.0.0-abcdef12/image_version');
    const bad = await validateSsmParameters(options);
    t.deepEqual(failedChecks(bad), [
      ['us-east-1', '/brl/test/aws-dev/x86_64/1.0.0-abcdef12/image_version', '1.0.0-abcdef12', '(missing)'],
      ['us-west-2', '/brl/test/aws-dev/x86_64/1.0.0-abcdef12/image_id', amis['us-west-2']?.id ?? '', 'ami-0fedcba9876543210'],
    ]);
    const failure = validationFailure('SSM parameters', bad, 'hint');
    t.is(failure?.exitCode, ExitCode.verifyFailed);
    t.regex(failure?.message ?? '', /us-east-1: \/brl\/test\/aws-dev\/x86_64\/1\.0\.0-abcdef12\/image_version is \(missing\), expected 1\.0\.0-abcdef12/);
  });
});

test.serial('SSM validation rides out throttling, and names a region the credentials cannot reach', async (t) => {
  await withFakeAws({ disabledRegions: new Set(['me-south-1']) }, async (fake, clients) => {
    const amis: AmisFile = Object.fromEntries([...regions, 'me-south-1'].map((region) => [region, { id: addPublishedImage(fake.state, region, name), name }]));
    const options = { clients, amis, amisPath: 'amis.json', regions, variant: 'aws-dev', arch: 'x86_64', imageVersion: '1.0.0-abcdef12', templates: defaultTemplates, prefix: '/brl/test' };
    await publishSsmParameters({ ...options, allowClobber: false, allowPrivateImages: false });
    fake.state.faults.push({ operation: 'GetParameters', kind: 'throttle', times: 2, region: 'us-east-1' });
    const result = await validateSsmParameters({ ...options, regions: [...regions, 'me-south-1'] });
    t.is(fake.state.count('GetParameters', 'us-east-1'), 3 + 1, 'publish read once; validate was throttled twice, then answered');
    t.deepEqual(result.regions.map((r) => [r.region, r.status]), [['us-west-2', 'ok'], ['us-east-1', 'ok'], ['me-south-1', 'unreachable']]);
    t.is(result.regions[2]?.error, 'AWS refused the request (UnrecognizedClientException): The security token included in the request is invalid.');
  });
});
