import test from 'ava';
import { createHash } from 'node:crypto';
import { readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeAwsUefiData, secureBootCertificatesIn } from '../../../src/lib/secure-boot/aws-uefi-data.ts';
import { initKeySet, loadFirmwareCertificates } from '../../../src/lib/secure-boot/key-set.ts';
import { brl } from '../../helpers/cli.ts';
import { expectedBlocks, makeVariantProject } from '../../fakes/aws/fixtures.ts';
import { startFakeAws } from '../../fakes/aws/server.ts';

test('publishes aws-dev to two regions, a rerun is a no-op, and grant/revoke rewrite amis.json', async (t) => {
  const project = await makeVariantProject();
  const fake = await startFakeAws();
  t.teardown(() => fake.close());
  const env = { ...fake.env, BRL_AWS_POLL_INTERVAL_MS: '1' };
  const publish = await brl(['ami', 'publish', '--variant', 'aws-dev', '--regions', 'us-west-2,eu-central-1', '--description', 'brl dev', '--json'], { cwd: project.projectDir, env });
  t.is(publish.exitCode, 0, publish.stderr);
  const result = JSON.parse(publish.stdout) as { name: string; amisPath: string; regions: { region: string; outcome: string; id: string }[] };
  t.is(result.name, 'bottlerocket-aws-dev-x86_64-v1.0.0-abcdef12');
  t.deepEqual(result.regions.map((r) => [r.region, r.outcome]), [['us-west-2', 'registered'], ['eu-central-1', 'copied']]);
  t.is(result.amisPath, join(project.imageDir, `${project.prefix}-amis.json`));
  t.is(await readlink(join(project.imageDir, 'bottlerocket-aws-dev-x86_64-amis.json')), `${project.prefix}-amis.json`);

  const [image] = fake.state.imagesIn('us-west-2');
  t.deepEqual(image?.blockDevices.map((d) => [d.deviceName, d.volumeSizeGiB]), [['/dev/xvda', 2], ['/dev/xvdb', 20]]);
  const osBlocks = fake.state.snapshots.get(image?.blockDevices[0]?.snapshotId ?? '')?.blocks;
  const dataBlocks = fake.state.snapshots.get(image?.blockDevices[1]?.snapshotId ?? '')?.blocks;
  t.deepEqual([...(osBlocks?.keys() ?? [])].sort((a, b) => a - b), [...(await expectedBlocks(project.osRaw, 524288)).keys()]);
  t.deepEqual([...(dataBlocks?.keys() ?? [])].sort((a, b) => a - b), [...(await expectedBlocks(project.dataRaw, 524288)).keys()]);

  const amisPath = result.amisPath;
  const amis = JSON.parse(await readFile(amisPath, 'utf8')) as Record<string, { id: string; public: boolean }>;
  t.deepEqual(Object.keys(amis), ['eu-central-1', 'us-west-2']);

  const requestsBefore = fake.state.count('StartSnapshot') + fake.state.count('RegisterImage') + fake.state.count('CopyImage');
  const rerun = await brl(['ami', 'publish', '--variant', 'aws-dev', '--regions', 'us-west-2,eu-central-1'], { cwd: project.projectDir, env });
  t.is(rerun.exitCode, 0, rerun.stderr);
  t.regex(rerun.stdout, /us-west-2\s+ami-\w+\s+reused/);
  t.is(fake.state.count('StartSnapshot') + fake.state.count('RegisterImage') + fake.state.count('CopyImage'), requestsBefore);

  const grant = await brl(['ami', 'grant', '--ami-input', amisPath, '--group-names', 'all'], { cwd: project.projectDir, env });
  t.is(grant.exitCode, 0, grant.stderr);
  t.regex(grant.stdout, /eu-central-1\s+ami-\w+\s+public \[\{"group":"all"\}\]/);
  t.true((JSON.parse(await readFile(amisPath, 'utf8')) as Record<string, { public: boolean }>)['eu-central-1']?.public);
  const revoke = await brl(['ami', 'revoke', '--ami-input', amisPath, '--group-names', 'all', '--json'], { cwd: project.projectDir, env });
  t.is(revoke.exitCode, 0, revoke.stderr);
  t.false((JSON.parse(await readFile(amisPath, 'utf8')) as Record<string, { public: boolean }>)['us-west-2']?.public);
});

test('a region failing CopyImage exits non-zero, and the rerun completes only that region', async (t) => {
  const project = await makeVariantProject();
  const fake = await startFakeAws({ failCopyImageTo: new Set(['ap-south-1']) });
  t.teardown(() => fake.close());
  const env = { ...fake.env, BRL_AWS_POLL_INTERVAL_MS: '1' };
  const args = ['ami', 'publish', '--variant', 'aws-dev', '--regions', 'us-west-2,us-east-2,ap-south-1', '--no-progress'];
  const first = await brl(args, { cwd: project.projectDir, env });
  t.is(first.exitCode, 1);
  t.regex(first.stderr, /Some AMIs failed to copy: ap-south-1/);
  t.regex(first.stdout, /ap-south-1\s+-\s+failed: injected CopyImage failure in ap-south-1/);
  fake.state.options.failCopyImageTo.clear();
  const second = await brl(args, { cwd: project.projectDir, env });
  t.is(second.exitCode, 0, second.stderr);
  t.regex(second.stdout, /us-east-2\s+ami-\w+\s+reused/);
  t.regex(second.stdout, /ap-south-1\s+ami-\w+\s+copied/);
  t.is(fake.state.count('StartSnapshot'), 2);
  t.is(fake.state.count('CopyImage', 'us-east-2'), 1);
});

test('a signed build registers boot mode uefi and UefiData from the key set\'s certificates, which ami validate reads back; another key set is refused before any upload', async (t) => {
  const variantToml = 'included-packages = ["release"]\n[image-features]\nuefi-secure-boot = true\n';
  const project = await makeVariantProject({ variant: 'aws-secure', variantToml });
  t.teardown(() => rm(project.projectDir, { recursive: true, force: true }));
  const keysDir = join(project.projectDir, 'keys', 'secure-boot');
  const certificates = await loadFirmwareCertificates((await initKeySet(keysDir, { organization: 'brl test', validDays: 30, rsaBits: 2048 })).dir);
  const manifest = { sourceDateEpoch: 1_767_225_600, bootSigning: { signed: true, dbCertificateSha256: createHash('sha256').update(certificates.db).digest('hex') } };
  await writeFile(join(project.imageDir, 'build-manifest.json'), JSON.stringify(manifest));
  const fake = await startFakeAws();
  t.teardown(() => fake.close());
  const env = { ...fake.env, BRL_AWS_POLL_INTERVAL_MS: '1', BRL_SECURE_BOOT_KEYS: keysDir };

  const otherKeys = await initKeySet(join(project.projectDir, 'other-keys'), { organization: 'brl test', validDays: 30, rsaBits: 2048 });
  const refused = await brl(['ami', 'publish', '--variant', 'aws-secure', '--regions', 'us-west-2', '--json'], { cwd: project.projectDir, env: { ...env, BRL_SECURE_BOOT_KEYS: otherKeys.dir } });
  t.is(refused.exitCode, 3);
  t.like(JSON.parse(refused.stdout), { error: { code: 'DB_CERTIFICATE_MISMATCH' } });
  t.is(fake.state.count('StartSnapshot'), 0);

  const publish = await brl(['ami', 'publish', '--variant', 'aws-secure', '--regions', 'us-west-2', '--no-progress'], { cwd: project.projectDir, env });
  t.is(publish.exitCode, 0, publish.stderr);
  const [image] = fake.state.imagesIn('us-west-2');
  t.is(image?.bootMode, 'uefi');
  t.deepEqual(secureBootCertificatesIn(decodeAwsUefiData(image?.uefiData ?? '', 'registered')), { pk: [certificates.pk], kek: [certificates.kek], db: [certificates.db] });

  const validate = await brl(['ami', 'validate', '--variant', 'aws-secure'], { cwd: project.projectDir, env });
  t.is(validate.exitCode, 0, validate.stderr);
  t.regex(validate.stdout, /us-west-2\s+boot-mode\s+uefi\s+uefi\s+ok/);
  t.regex(validate.stdout, /us-west-2\s+uefi-data db\s+[0-9a-f]{64}\s+[0-9a-f]{64}\s+ok/);
});

test('--arch aarch64 registers arm64 AMIs named with aarch64 in every region, a rerun finds them by arm64, and ami validate checks the architecture', async (t) => {
  const project = await makeVariantProject({ arch: 'aarch64' });
  t.teardown(() => rm(project.projectDir, { recursive: true, force: true }));
  const fake = await startFakeAws();
  t.teardown(() => fake.close());
  const run = (args: string[]) => brl(args, { cwd: project.projectDir, env: { ...fake.env, BRL_AWS_POLL_INTERVAL_MS: '1' } });
  const args = ['ami', 'publish', '--variant', 'aws-dev', '--arch', 'aarch64', '--regions', 'us-west-2,eu-central-1', '--json'];
  const publish = await run(args);
  t.is(publish.exitCode, 0, publish.stderr);
  const result = JSON.parse(publish.stdout) as { name: string; amisPath: string; regions: { region: string; outcome: string }[] };
  // Upstream names AMIs with the build's arch (aarch64); only EC2's Architecture field says arm64.
  t.is(result.name, 'bottlerocket-aws-dev-aarch64-v1.0.0-abcdef12');
  t.is(result.amisPath, join(project.imageDir, `${project.prefix}-amis.json`));
  t.is(await readlink(join(project.imageDir, 'bottlerocket-aws-dev-aarch64-amis.json')), `${project.prefix}-amis.json`);
  t.deepEqual(result.regions.map((r) => [r.region, r.outcome]), [['us-west-2', 'registered'], ['eu-central-1', 'copied']]);
  for (const region of ['us-west-2', 'eu-central-1']) {
    t.like(fake.state.imagesIn(region)[0], { name: result.name, architecture: 'arm64' }, region);
  }

  const rerun = await run(args);
  t.is(rerun.exitCode, 0, rerun.stderr);
  t.deepEqual((JSON.parse(rerun.stdout) as typeof result).regions.map((r) => r.outcome), ['reused', 'reused']);
  t.is(fake.state.count('RegisterImage'), 1);

  const validate = await run(['ami', 'validate', '--variant', 'aws-dev', '--arch', 'aarch64']);
  t.is(validate.exitCode, 0, validate.stderr);
  t.regex(validate.stdout, /us-west-2\s+architecture\s+arm64\s+arm64\s+ok/);
  t.regex(validate.stdout, /eu-central-1\s+name\s+bottlerocket-aws-dev-aarch64-v1\.0\.0-abcdef12\s+bottlerocket-aws-dev-aarch64-v1\.0\.0-abcdef12\s+ok/);
  const [copy] = fake.state.imagesIn('eu-central-1');
  if (copy) copy.architecture = 'x86_64';
  const wrong = await run(['ami', 'validate', '--variant', 'aws-dev', '--arch', 'aarch64']);
  t.is(wrong.exitCode, 6);
  t.regex(wrong.stdout, /eu-central-1\s+architecture\s+arm64\s+x86_64\s+MISMATCH/);
});

test('a user mistake is a message and a hint, not a stack trace', async (t) => {
  const project = await makeVariantProject();
  const missing = await brl(['ami', 'publish', '--variant', 'aws-dev', '--arch', 'aarch64', '--regions', 'us-west-2'], { cwd: project.projectDir });
  t.is(missing.exitCode, 4);
  t.regex(missing.stderr, /no images for aws-dev \(aarch64\)/);
  t.regex(missing.stderr, /brl build variant aws-dev --arch aarch64/);
  t.notRegex(missing.stderr, /at .*\.js:\d+/);
  const noInput = await brl(['ami', 'grant', '--ami-input', join(project.projectDir, 'nope.json'), '--group-names', 'all', '--json'], { cwd: project.projectDir });
  t.is(noInput.exitCode, 4);
  t.like(JSON.parse(noInput.stdout), { error: { code: 'FILE_NOT_FOUND' } });

  const amisPath = join(project.projectDir, 'amis.json');
  await writeFile(amisPath, JSON.stringify({ 'us-west-2': { id: 'ami-0123456789abcdef0', name: 'x' } }));
  const noCredentials = await brl(['ami', 'grant', '--ami-input', amisPath, '--group-names', 'all', '--json'], {
    cwd: project.projectDir,
    env: { HOME: project.projectDir, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: '', AWS_EC2_METADATA_DISABLED: 'true', AWS_ENDPOINT_URL: 'http://127.0.0.1:9' },
  });
  t.like(JSON.parse(noCredentials.stdout), { error: { code: 'NO_AWS_CREDENTIALS', exitCode: 2 } });
  const unreachable = await brl(['ami', 'grant', '--ami-input', amisPath, '--group-names', 'all', '--json'], {
    cwd: project.projectDir,
    env: { AWS_ACCESS_KEY_ID: 'AKIAFAKE', AWS_SECRET_ACCESS_KEY: 'fake', AWS_ENDPOINT_URL: 'http://127.0.0.1:9' },
  });
  t.is(unreachable.exitCode, 7);
  t.like(JSON.parse(unreachable.stdout), { error: { code: 'AWS_UNREACHABLE' } });
});
