import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AwsClients } from '../../../src/lib/aws/clients.ts';
import { describeDiskImage } from '../../../src/lib/aws/images.ts';
import { publishAmi, type PublishAmiOptions } from '../../../src/lib/aws/publish-ami.ts';
import { uefiDataForPublish } from '../../../src/lib/aws/uefi-data.ts';
import { decodeAwsUefiData, efiTime, secureBootCertificatesIn } from '../../../src/lib/secure-boot/aws-uefi-data.ts';
import { initKeySet, loadFirmwareCertificates } from '../../../src/lib/secure-boot/key-set.ts';
import { expectedBlocks, makeSparseImage } from '../../fakes/aws/fixtures.ts';
import { withFakeAws } from '../../fakes/aws/harness.ts';
import type { FakeAws } from '../../fakes/aws/server.ts';
import type { FakeOptions } from '../../fakes/aws/state.ts';
import { tmpdir } from 'node:os';

const MiB = 1024 * 1024;

interface Setup {
  fake: FakeAws;
  clients: AwsClients;
  options: PublishAmiOptions;
  osPath: string;
  dataPath: string;
}

async function withPublish(fakeOptions: Partial<FakeOptions>, overrides: Partial<PublishAmiOptions>, body: (setup: Setup) => Promise<void>): Promise<void> {
  await withFakeAws(fakeOptions, async (fake, clients) => {
    const dir = await mkdtemp(join(tmpdir(), 'brl-publish-'));
    const osPath = join(dir, 'os.img');
    const dataPath = join(dir, 'data.img');
    await makeSparseImage(osPath, 3 * MiB, [[0, 4096], [2 * MiB, 600_000]]);
    await makeSparseImage(dataPath, 2 * MiB, [[MiB, 10]]);
    const options: PublishAmiOptions = {
      clients,
      regions: ['us-west-2', 'us-east-1', 'eu-west-1'],
      name: 'bottlerocket-dev-x86_64-v1.0.0-abcdef12',
      description: 'test image',
      arch: 'x86_64',
      osImage: await describeDiskImage(osPath),
      dataImage: await describeDiskImage(dataPath),
      sizes: { osVolumeGiB: 2, dataVolumeGiB: 20 },
      uefiSecureBoot: false,
      uefiData: undefined,
      amiSpec: {},
      regionRoles: {},
      amisPath: join(dir, 'amis.json'),
      upload: { retryDelayMs: 5 },
      poll: { intervalMs: 1, maxAttempts: 90 },
      progress: 'silent',
      ...overrides,
    };
    await body({ fake, clients, options, osPath, dataPath });
  });
}

test.serial('registers the AMI with the spec parameters, copies it and writes amis.json', async (t) => {
  await withPublish({ imagePendingDescribes: 2 }, {}, async ({ fake, options, osPath }) => {
    const result = await publishAmi(options);
    t.deepEqual(result.failedRegions, []);
    t.deepEqual(result.regions.map((r) => r.outcome), ['registered', 'copied', 'copied']);
    const base = fake.state.imagesIn('us-west-2');
    t.is(base.length, 1);
    const image = base[0];
    t.like(image, { name: options.name, description: 'test image', architecture: 'x86_64', virtualizationType: 'hvm', rootDeviceName: '/dev/xvda', enaSupport: true, sriovNetSupport: 'simple', bootMode: undefined, uefiData: undefined, imdsSupport: undefined, state: 'available' });
    t.deepEqual(image?.blockDevices.map((d) => [d.deviceName, d.volumeType, d.volumeSizeGiB, d.deleteOnTermination]), [['/dev/xvda', 'gp2', 2, true], ['/dev/xvdb', 'gp2', 20, true]]);
    const osSnapshot = fake.state.snapshots.get(image?.blockDevices[0]?.snapshotId ?? '');
    t.deepEqual([...(osSnapshot?.blocks.keys() ?? [])].sort((a, b) => a - b), [...(await expectedBlocks(osPath, 512 * 1024)).keys()]);
    for (const region of ['us-east-1', 'eu-west-1']) {
      t.like(fake.state.imagesIn(region)[0], { name: options.name, sourceImageId: image?.id, sourceRegion: 'us-west-2' });
    }
    const amis = JSON.parse(await readFile(options.amisPath, 'utf8')) as Record<string, { id: string; name: string; public: boolean }>;
    t.deepEqual(Object.keys(amis), ['eu-west-1', 'us-east-1', 'us-west-2']);
    t.deepEqual(amis['us-west-2'], { id: image?.id ?? '', name: options.name, public: false, launch_permissions: [] });
  });
});

test.serial('a rerun reuses the AMIs and creates nothing', async (t) => {
  await withPublish({}, {}, async ({ fake, options }) => {
    await publishAmi(options);
    const before = { snapshots: fake.state.snapshots.size, images: fake.state.images.size, starts: fake.state.count('StartSnapshot') };
    const rerun = await publishAmi(options);
    t.deepEqual(rerun.regions.map((r) => r.outcome), ['reused', 'reused', 'reused']);
    t.deepEqual(rerun.uploads, []);
    t.deepEqual({ snapshots: fake.state.snapshots.size, images: fake.state.images.size, starts: fake.state.count('StartSnapshot') }, before);
    t.is(fake.state.count('RegisterImage'), 1);
    t.is(fake.state.count('CopyImage'), 2);
  });
});

test.serial('a region failing CopyImage is reported, and a rerun copies only to it', async (t) => {
  await withPublish({ failCopyImageTo: new Set(['eu-west-1']) }, {}, async ({ fake, options }) => {
    const first = await publishAmi(options);
    t.deepEqual(first.failedRegions, ['eu-west-1']);
    t.regex(first.regions.find((r) => r.region === 'eu-west-1')?.error ?? '', /injected CopyImage failure/);
    t.deepEqual(Object.keys(JSON.parse(await readFile(options.amisPath, 'utf8')) as object).sort(), ['us-east-1', 'us-west-2']);

    fake.state.options.failCopyImageTo.clear();
    const copiesBefore = fake.state.count('CopyImage');
    const second = await publishAmi(options);
    t.deepEqual(second.regions.map((r) => [r.region, r.outcome]), [['us-west-2', 'reused'], ['us-east-1', 'reused'], ['eu-west-1', 'copied']]);
    t.is(fake.state.count('CopyImage') - copiesBefore, 1);
    t.is(fake.state.count('CopyImage', 'eu-west-1'), 2);
    t.deepEqual(Object.keys(JSON.parse(await readFile(options.amisPath, 'utf8')) as object), ['eu-west-1', 'us-east-1', 'us-west-2']);
  });
});

test.serial('a failed registration deletes the snapshots it uploaded', async (t) => {
  await withPublish({ failRegisterImage: true }, {}, async ({ fake, options }) => {
    const error = await t.throwsAsync(publishAmi(options));
    t.regex(error?.message ?? '', /registering .* in us-west-2 failed: injected RegisterImage failure; deleted snapshots snap-\w+, snap-\w+/);
    t.is(fake.state.count('StartSnapshot'), 2);
    t.is(fake.state.snapshots.size, 0);
  });
});

test.serial('a failed data image upload deletes the OS snapshot uploaded before it', async (t) => {
  await withPublish({}, { upload: { retryDelayMs: 1, maxAttempts: 2 } }, async ({ fake, options }) => {
    fake.state.faults.push({ operation: 'PutSnapshotBlock', kind: 'server-error', times: 1000, after: 3 });
    await t.throwsAsync(publishAmi(options), { message: /uploading block \d+ of data\.img/ });
    t.is(fake.state.count('StartSnapshot'), 2);
    t.is(fake.state.snapshots.size, 0);
    t.is(fake.state.count('RegisterImage'), 0);
  });
});

test.serial('an image larger than its publish volume is refused before anything is uploaded', async (t) => {
  await withPublish({}, { sizes: { osVolumeGiB: 0, dataVolumeGiB: 20 } }, async ({ fake, options }) => {
    await t.throwsAsync(publishAmi(options), { message: /os\.img \(3145728 bytes\) does not fit the 0 GiB OS volume/ });
    t.is(fake.state.count('StartSnapshot'), 0);
  });
});

test.serial('a signed build registers boot mode uefi with UefiData holding the key set\'s PK, KEK and db, and its copy keeps them; amispec opts into IMDSv2', async (t) => {
  const projectDir = await mkdtemp(join(tmpdir(), 'brl-uefi-'));
  t.teardown(() => rm(projectDir, { recursive: true, force: true }));
  const keys = await initKeySet(join(projectDir, 'keys', 'secure-boot'), { organization: 'brl test', validDays: 30, rsaBits: 2048 });
  await writeFile(join(projectDir, 'brl.toml'), '[secure-boot]\nkeys-dir = "keys/secure-boot"\n');
  const certificates = await loadFirmwareCertificates(keys.dir);
  const uefiData = (await uefiDataForPublish({
    projectDir, variant: 'aws-secure', signed: true, dbCertificateSha256: createHash('sha256').update(certificates.db).digest('hex'), sourceDateEpoch: 1_767_225_600, env: {},
  }))!;
  t.is(uefiData.source, keys.dir);
  const overrides: Partial<PublishAmiOptions> = {
    regions: ['us-west-2', 'us-east-1'], uefiSecureBoot: true, uefiData: uefiData.value, amiSpec: { imdsSupport: 'v2.0', volumeType: 'gp3' }, dataImage: undefined, sizes: { osVolumeGiB: 22, dataVolumeGiB: undefined },
  };
  await withPublish({}, overrides, async ({ fake, options }) => {
    await publishAmi(options);
    const image = fake.state.imagesIn('us-west-2')[0];
    t.like(image, { bootMode: 'uefi', imdsSupport: 'v2.0' });
    t.deepEqual(image?.blockDevices.map((d) => [d.deviceName, d.volumeType, d.volumeSizeGiB]), [['/dev/xvda', 'gp3', 22]]);
    const variables = decodeAwsUefiData(image?.uefiData ?? '', 'the registered image');
    t.deepEqual(secureBootCertificatesIn(variables), { pk: [certificates.pk], kek: [certificates.kek], db: [certificates.db] });
    t.true(variables.every((v) => v.attributes === 0x27 && v.timestamp?.equals(efiTime(new Date('2026-01-01T00:00:00Z')))));
    t.like(fake.state.imagesIn('us-east-1')[0], { bootMode: 'uefi', uefiData: image?.uefiData });
  });
});

test.serial('UefiData over EC2\'s 64 KiB is refused before anything is uploaded', async (t) => {
  await withPublish({}, { regions: ['us-west-2'], uefiSecureBoot: true, uefiData: 'A'.repeat(64 * 1024 + 4) }, async ({ fake, options }) => {
    await t.throwsAsync(publishAmi(options), { code: 'UEFI_DATA_TOO_LARGE', message: /65540 bytes of base64; EC2 takes at most 65536/ });
    t.is(fake.state.count('StartSnapshot'), 0);
    t.is(fake.state.count('RegisterImage'), 0);
  });
});

test.serial('throttled and failing EC2 calls are retried by the SDK', async (t) => {
  await withPublish({}, { regions: ['us-west-2', 'us-east-1'] }, async ({ fake, options }) => {
    fake.state.faults.push(
      { operation: 'DescribeImages', kind: 'throttle', times: 2 },
      { operation: 'RegisterImage', kind: 'server-error', times: 1 },
      { operation: 'CopyImage', kind: 'throttle', times: 1, region: 'us-east-1' },
    );
    const result = await publishAmi(options);
    t.deepEqual(result.failedRegions, []);
    t.is(fake.state.imagesIn('us-west-2').length, 1);
    t.is(fake.state.count('RegisterImage'), 2);
  });
});

test.serial("the accounts of the configured per-region roles, except the caller's own, get access in every region", async (t) => {
  const regionRoles = { 'us-west-2': 'arn:aws:iam::111122223333:role/publisher', 'us-east-1': 'arn:aws:iam::444455556666:role/publisher' };
  await withPublish({}, { regions: ['us-west-2', 'us-east-1'], regionRoles }, async ({ fake, options }) => {
    await publishAmi(options);
    t.is(fake.state.count('GetCallerIdentity'), 1);
    for (const image of fake.state.images.values()) {
      t.deepEqual(image.launchPermissions, [{ userId: '444455556666' }], image.region);
      for (const device of image.blockDevices) t.deepEqual([...(fake.state.snapshots.get(device.snapshotId)?.createVolumeUserIds ?? [])], ['444455556666']);
    }
    const amis = JSON.parse(await readFile(options.amisPath, 'utf8')) as Record<string, { launch_permissions: unknown[] }>;
    t.deepEqual(amis['us-east-1']?.launch_permissions, [{ userid: '444455556666' }]);
  });
});
