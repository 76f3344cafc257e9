import test from 'ava';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AmisFile } from '../../../src/lib/aws/amis-file.ts';
import { promoteSsmParameters, publishSsmParameters, type SsmPublishOptions } from '../../../src/lib/aws/ssm-publish.ts';
import { defaultTemplates, joinParameterName, loadTemplates } from '../../../src/lib/aws/ssm-templates.ts';
import { withFakeAws } from '../../fakes/aws/harness.ts';
import type { FakeAws } from '../../fakes/aws/server.ts';

function addImage(fake: FakeAws, region: string, isPublic: boolean, state: 'available' | 'pending' = 'available'): string {
  const id = fake.state.newId('ami');
  fake.state.images.set(id, {
    id, region, ownerId: fake.state.options.accountId, name: 'bottlerocket-dev-x86_64-v1.0.0-abcdef12', description: '', architecture: 'x86_64', virtualizationType: 'hvm',
    rootDeviceName: '/dev/xvda', enaSupport: true, sriovNetSupport: 'simple', bootMode: undefined, uefiData: undefined, imdsSupport: undefined, tpmSupport: undefined,
    blockDevices: [], tags: {}, state, describesUntilAvailable: 1000, launchPermissions: isPublic ? [{ group: 'all' }] : [], sourceImageId: undefined, sourceRegion: undefined,
  });
  return id;
}

function parameter(fake: FakeAws, region: string, name: string): string | undefined {
  return fake.state.parameters.get(`${region}\0${name}`)?.value;
}

function publishOptions(clients: SsmPublishOptions['clients'], amis: AmisFile, overrides: Partial<SsmPublishOptions> = {}): SsmPublishOptions {
  return {
    clients, amis, amisPath: 'amis.json', regions: undefined, variant: 'dev', arch: 'aarch64', imageVersion: '1.0.0-abcdef12',
    templates: defaultTemplates, prefix: '/brl/test', allowClobber: false, allowPrivateImages: false, ...overrides,
  };
}

test('parameter names join the prefix with exactly one slash', (t) => {
  t.is(joinParameterName('/brl/test/', '/dev/x86_64/latest/image_id'), '/brl/test/dev/x86_64/latest/image_id');
  t.is(joinParameterName('brl', 'a/b'), '/brl/a/b');
});

test.serial('publish renders the templates per region (EC2 arch names) and a rerun changes nothing', async (t) => {
  await withFakeAws({}, async (fake, clients) => {
    const amis: AmisFile = { 'us-west-2': { id: addImage(fake, 'us-west-2', false), name: 'n' }, 'eu-west-1': { id: addImage(fake, 'eu-west-1', false), name: 'n' } };
    const first = await publishSsmParameters(publishOptions(clients, amis));
    t.deepEqual(first.changes.map((c) => c.action), ['created', 'created', 'created', 'created']);
    t.is(parameter(fake, 'eu-west-1', '/brl/test/dev/arm64/1.0.0-abcdef12/image_id'), amis['eu-west-1']?.id);
    t.is(parameter(fake, 'us-west-2', '/brl/test/dev/arm64/1.0.0-abcdef12/image_version'), '1.0.0-abcdef12');
    const puts = fake.state.count('PutParameter');
    const again = await publishSsmParameters(publishOptions(clients, amis));
    t.deepEqual(again.changes.map((c) => c.action), ['unchanged', 'unchanged', 'unchanged', 'unchanged']);
    t.is(fake.state.count('PutParameter'), puts);
  });
});

test.serial('publish refuses to overwrite a different value unless --allow-clobber, and writes nothing when refusing', async (t) => {
  await withFakeAws({}, async (fake, clients) => {
    const amis: AmisFile = { 'us-west-2': { id: addImage(fake, 'us-west-2', false), name: 'n' } };
    await publishSsmParameters(publishOptions(clients, amis));
    const newer: AmisFile = { 'us-west-2': { id: addImage(fake, 'us-west-2', false), name: 'n' } };
    await t.throwsAsync(publishSsmParameters(publishOptions(clients, newer)), { message: /1 parameter\(s\) already exist with other values: \/brl\/test\/dev\/arm64\/1\.0\.0-abcdef12\/image_id in us-west-2/ });
    t.is(parameter(fake, 'us-west-2', '/brl/test/dev/arm64/1.0.0-abcdef12/image_id'), amis['us-west-2']?.id);
    const clobbered = await publishSsmParameters(publishOptions(clients, newer, { allowClobber: true }));
    t.deepEqual(clobbered.changes.map((c) => c.action), ['updated', 'unchanged']);
    t.is(parameter(fake, 'us-west-2', '/brl/test/dev/arm64/1.0.0-abcdef12/image_id'), newer['us-west-2']?.id);
  });
});

test.serial('publish refuses private AMIs under /aws/ unless allowed', async (t) => {
  // Only AWS's own publishing accounts may write under /aws/ (the fake refuses it otherwise).
  await withFakeAws({ reservedParameterNames: true }, async (fake, clients) => {
    const privateAmis: AmisFile = { 'us-west-2': { id: addImage(fake, 'us-west-2', false), name: 'n', public: false } };
    await t.throwsAsync(publishSsmParameters(publishOptions(clients, privateAmis, { prefix: '/aws/service/brl' })), { message: /is not public, and the parameters would live under \/aws\// });
    t.is(fake.state.count('PutParameter'), 0);
    await publishSsmParameters(publishOptions(clients, privateAmis, { prefix: '/aws/service/brl', allowPrivateImages: true }));
    // amis.json without `public` is checked against EC2.
    const publicAmis: AmisFile = { 'us-east-1': { id: addImage(fake, 'us-east-1', true), name: 'n' } };
    await publishSsmParameters(publishOptions(clients, publicAmis, { prefix: '/aws/service/brl' }));
    t.is(parameter(fake, 'us-east-1', '/aws/service/brl/dev/arm64/1.0.0-abcdef12/image_id'), publicAmis['us-east-1']?.id);
  });
});

test.serial('template files filter by variant and arch and reject unknown variables', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'brl-ssm-'));
  const path = join(dir, 'defaults.toml');
  await writeFile(path, '[[parameter]]\nname = "{variant}/{arch}/{image_version}/image_id"\nvalue = "{image_id}"\n\n[[parameter]]\nname = "{variant}/{arch}/{image_version}/name"\nvalue = "{image_name} in {region}"\nvariant = ["aws-k8s-1.31"]\narch = ["x86_64"]\n');
  const templates = await loadTemplates(path);
  await withFakeAws({}, async (fake, clients) => {
    const amis: AmisFile = { 'us-west-2': { id: addImage(fake, 'us-west-2', false), name: 'bottlerocket-x' } };
    const dev = await publishSsmParameters(publishOptions(clients, amis, { templates }));
    t.is(dev.changes.length, 1);
    const k8s = await publishSsmParameters(publishOptions(clients, amis, { templates, variant: 'aws-k8s-1.31', arch: 'x86_64' }));
    t.deepEqual(k8s.changes.map((c) => [c.name, c.value]), [
      ['/brl/test/aws-k8s-1.31/x86_64/1.0.0-abcdef12/image_id', amis['us-west-2']?.id],
      ['/brl/test/aws-k8s-1.31/x86_64/1.0.0-abcdef12/name', 'bottlerocket-x in us-west-2'],
    ]);
  });
  await writeFile(path, '[[parameter]]\nname = "{variant}/{flavor}/image_id"\nvalue = "{image_id}"\n');
  await t.throwsAsync(loadTemplates(path), { message: /defaults\.toml:2: parameter\[0\]\.name: unknown variable \{flavor\}/ });
});

test.serial('promote copies the source values to the target names, only for available public AMIs unless forced', async (t) => {
  await withFakeAws({}, async (fake, clients) => {
    const amis: AmisFile = { 'us-west-2': { id: addImage(fake, 'us-west-2', false), name: 'n' }, 'us-east-1': { id: addImage(fake, 'us-east-1', true), name: 'n' } };
    await publishSsmParameters(publishOptions(clients, amis));
    const promote = (overrides: { force?: boolean; source?: string } = {}) =>
      promoteSsmParameters({ clients, regions: ['us-west-2', 'us-east-1'], variant: 'dev', arch: 'aarch64', source: overrides.source ?? '1.0.0-abcdef12', target: 'latest', templates: defaultTemplates, prefix: '/brl/test', force: overrides.force ?? false });
    const refused = await t.throwsAsync(promote());
    t.regex(refused?.message ?? '', new RegExp(`${amis['us-west-2']?.id} in us-west-2 is not public`));
    t.is(fake.state.count('PutParameter'), 4, 'nothing written when refusing');

    fake.state.images.get(amis['us-west-2']?.id ?? '')?.launchPermissions.push({ group: 'all' });
    const promoted = await promote();
    t.deepEqual(promoted.forcedPast, []);
    t.is(parameter(fake, 'us-west-2', '/brl/test/dev/arm64/latest/image_id'), amis['us-west-2']?.id);
    t.is(parameter(fake, 'us-east-1', '/brl/test/dev/arm64/latest/image_version'), '1.0.0-abcdef12');
    t.deepEqual((await promote()).changes.map((c) => c.action), ['unchanged', 'unchanged', 'unchanged', 'unchanged'], 'promotion is idempotent');

    const pendingId = addImage(fake, 'us-west-2', true, 'pending');
    for (const [name, value] of [['/brl/test/dev/arm64/1.1.0-abcdef12/image_id', pendingId], ['/brl/test/dev/arm64/1.1.0-abcdef12/image_version', '1.1.0-abcdef12']] as const) {
      fake.state.parameters.set(`us-west-2\0${name}`, { name, value, type: 'String', dataType: 'text', version: 1, lastModified: new Date() });
    }
    await t.throwsAsync(
      promoteSsmParameters({ clients, regions: ['us-west-2'], variant: 'dev', arch: 'aarch64', source: '1.1.0-abcdef12', target: 'latest', templates: defaultTemplates, prefix: '/brl/test', force: false }),
      { message: /is pending, not available/ },
    );
    const forced = await promoteSsmParameters({ clients, regions: ['us-west-2'], variant: 'dev', arch: 'aarch64', source: '1.1.0-abcdef12', target: 'latest', templates: defaultTemplates, prefix: '/brl/test', force: true });
    t.deepEqual(forced.forcedPast, [`${pendingId} in us-west-2 is pending, not available`]);
    t.is(parameter(fake, 'us-west-2', '/brl/test/dev/arm64/latest/image_id'), pendingId);
  });
});

test.serial('promote fails when a source parameter is missing', async (t) => {
  await withFakeAws({}, async (_fake, clients) => {
    await t.throwsAsync(
      promoteSsmParameters({ clients, regions: ['us-west-2'], variant: 'dev', arch: 'x86_64', source: '9.9.9', target: 'latest', templates: defaultTemplates, prefix: '/brl/test', force: false }),
      { message: /cannot promote in us-west-2: \/brl\/test\/dev\/x86_64\/9\.9\.9\/image_id, \/brl\/test\/dev\/x86_64\/9\.9\.9\/image_version not found/ },
    );
  });
});
