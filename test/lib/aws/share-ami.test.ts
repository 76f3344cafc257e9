import test from 'ava';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAmisFile, writeAmisFile, type AmisFile } from '../../../src/lib/aws/amis-file.ts';
import type { AwsClients } from '../../../src/lib/aws/clients.ts';
import { shareAmi, type Principals } from '../../../src/lib/aws/share-ami.ts';
import { withFakeAws } from '../../fakes/aws/harness.ts';
import type { FakeAws } from '../../fakes/aws/server.ts';

const regions = ['us-west-2', 'us-east-1'];
const noOne: Principals = { userIds: [], groupNames: [], organizationArns: [], organizationalUnitArns: [] };

/** Two published regions, registered straight into the fake's state. */
async function published(fake: FakeAws): Promise<{ amis: AmisFile; amisPath: string }> {
  const amis: AmisFile = {};
  for (const region of regions) {
    const snapshotId = fake.state.newId('snap');
    fake.state.snapshots.set(snapshotId, {
      id: snapshotId, region, ownerId: fake.state.options.accountId, volumeSizeGiB: 2, blockSize: 524288, description: '', state: 'completed',
      blocks: new Map(), bytesWritten: 0, signedPayloadPuts: 0, notFoundPutsLeft: 0, describesUntilCompleted: 0, createVolumeUserIds: new Set(), createVolumeGroups: new Set(), clientToken: undefined,
    });
    const id = fake.state.newId('ami');
    fake.state.images.set(id, {
      id, region, ownerId: fake.state.options.accountId, name: 'brl-test', description: '', architecture: 'x86_64', virtualizationType: 'hvm', rootDeviceName: '/dev/xvda',
      enaSupport: true, sriovNetSupport: 'simple', bootMode: undefined, uefiData: undefined, imdsSupport: undefined, tpmSupport: undefined,
      blockDevices: [{ deviceName: '/dev/xvda', snapshotId, volumeSizeGiB: 2, volumeType: 'gp2', deleteOnTermination: true }],
      tags: {}, state: 'available', describesUntilAvailable: 0, launchPermissions: [], sourceImageId: undefined, sourceRegion: undefined,
    });
    amis[region] = { id, name: 'brl-test' };
  }
  const amisPath = join(await mkdtemp(join(tmpdir(), 'brl-share-')), 'amis.json');
  await writeAmisFile(amisPath, amis);
  return { amis, amisPath };
}

/** The Modify*Attribute calls the fake received, in order: all of them, and one region's. */
function modifications(fake: FakeAws, region?: string): string[] {
  return fake.state.requestLog.filter((r) => r.operation.startsWith('Modify') && (region === undefined || r.region === region)).map((r) => r.operation);
}

function share(clients: AwsClients, operation: 'grant' | 'revoke', amis: AmisFile, amisPath: string, principals: Partial<Principals>) {
  return shareAmi({ clients, operation, amis, amisPath, regions: undefined, principals: { ...noOne, ...principals }, poll: { intervalMs: 1, maxAttempts: 5 }, progress: 'silent' });
}

test.serial('grant makes snapshots and AMIs public everywhere and rewrites amis.json; revoke undoes it', async (t) => {
  await withFakeAws({}, async (fake, clients) => {
    const { amis, amisPath } = await published(fake);
    const granted = await share(clients, 'grant', amis, amisPath, { groupNames: ['all'], userIds: ['444455556666'], organizationArns: ['arn:aws:organizations::111122223333:organization/o-abc'] });
    t.deepEqual(granted.failures, []);
    for (const snapshot of fake.state.snapshots.values()) {
      t.deepEqual([...snapshot.createVolumeGroups], ['all']);
      t.deepEqual([...snapshot.createVolumeUserIds], ['444455556666'], 'organization ARNs are not passed to snapshots');
    }
    const file = await readAmisFile(amisPath);
    t.deepEqual(file['us-east-1'], {
      id: amis['us-east-1']?.id ?? '',
      name: 'brl-test',
      public: true,
      launch_permissions: [{ userid: '444455556666' }, { group: 'all' }, { organizationarn: 'arn:aws:organizations::111122223333:organization/o-abc' }],
    });
    // In each region the snapshot changes before the AMI, and the snapshots in every region before any AMI.
    for (const region of regions) t.deepEqual(modifications(fake, region), ['ModifySnapshotAttribute', 'ModifyImageAttribute'], region);
    t.deepEqual(modifications(fake), ['ModifySnapshotAttribute', 'ModifySnapshotAttribute', 'ModifyImageAttribute', 'ModifyImageAttribute']);

    await share(clients, 'revoke', file, amisPath, { groupNames: ['all'] });
    const revoked = await readAmisFile(amisPath);
    t.like(revoked['us-west-2'], { public: false });
    t.deepEqual(revoked['us-west-2']?.launch_permissions?.map((p) => Object.keys(p)[0]).sort(), ['organizationarn', 'userid']);
    for (const snapshot of fake.state.snapshots.values()) t.deepEqual([...snapshot.createVolumeGroups], []);
    // The file on disk holds what EC2 now reports for every region.
    const onDisk = JSON.parse(await readFile(amisPath, 'utf8')) as AmisFile;
    for (const region of regions) {
      const id = amis[region]?.id ?? '';
      t.deepEqual(fake.state.images.get(id)?.launchPermissions, [{ userId: '444455556666' }, { organizationArn: 'arn:aws:organizations::111122223333:organization/o-abc' }]);
      t.deepEqual(onDisk[region], {
        id, name: 'brl-test', public: false,
        launch_permissions: [{ userid: '444455556666' }, { organizationarn: 'arn:aws:organizations::111122223333:organization/o-abc' }],
      }, region);
    }
  });
});

test.serial('revoke changes the AMIs before their snapshots, so a public AMI never points at a private snapshot', async (t) => {
  await withFakeAws({}, async (fake, clients) => {
    const { amis, amisPath } = await published(fake);
    await share(clients, 'grant', amis, amisPath, { groupNames: ['all'] });
    fake.state.requestLog.length = 0;
    await share(clients, 'revoke', amis, amisPath, { groupNames: ['all'] });
    // In each region the AMI changes before its snapshot, and the AMIs in every region before any snapshot.
    for (const region of regions) t.deepEqual(modifications(fake, region), ['ModifyImageAttribute', 'ModifySnapshotAttribute'], region);
    t.deepEqual(modifications(fake), ['ModifyImageAttribute', 'ModifyImageAttribute', 'ModifySnapshotAttribute', 'ModifySnapshotAttribute']);
    for (const image of fake.state.images.values()) t.deepEqual(image.launchPermissions, []);
    for (const snapshot of fake.state.snapshots.values()) t.deepEqual([...snapshot.createVolumeGroups], []);
  });
});

test.serial('a region whose snapshot grant fails keeps its AMI private, is reported, and amis.json stays accurate', async (t) => {
  await withFakeAws({}, async (fake, clients) => {
    const { amis, amisPath } = await published(fake);
    fake.state.faults.push({ operation: 'ModifySnapshotAttribute', kind: 'server-error', times: 10, region: 'us-east-1' });
    const result = await share(clients, 'grant', amis, amisPath, { groupNames: ['all'] });
    t.deepEqual(result.failures.map((f) => f.region), ['us-east-1']);
    t.is(fake.state.count('ModifyImageAttribute', 'us-east-1'), 0);
    const file = await readAmisFile(amisPath);
    t.is(file['us-east-1']?.public, false);
    t.is(file['us-west-2']?.public, true);
  });
});

test.serial('refuses to run without principals or with an unknown group', async (t) => {
  await withFakeAws({}, async (fake, clients) => {
    const { amis, amisPath } = await published(fake);
    await t.throwsAsync(share(clients, 'grant', amis, amisPath, {}), { message: /no principals/ });
    await t.throwsAsync(share(clients, 'grant', amis, amisPath, { groupNames: ['everyone'] }), { message: /unknown group "everyone"/ });
    t.is(fake.state.count('DescribeImages'), 0);
  });
});
