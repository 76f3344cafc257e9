import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { bootHost } from '../../../src/lib/host/boot/boot.ts';
import { readVersionChain } from '../../../src/lib/host/datastore/layout.ts';
import { COMMIT_LOG, Datastore } from '../../../src/lib/host/datastore/store.ts';
import { flatten } from '../../../src/lib/host/datastore/tree.ts';
import { nextBoot } from '../../../src/lib/signpost/index.ts';
import { makeAbDisk, sgdiskAttributeBits, sgdiskVerify } from '../signpost/fixtures.ts';
import { makeRoot } from './_root.ts';
import { writeSignedMigrationCache } from '../update-metadata/migration-cache-fixture.ts';

async function boot(root: string, userData?: string) {
  const { result, server } = await bootHost({ root, log: () => undefined, ...(userData === undefined ? {} : { userData }) });
  const settings = server.store.document(['settings']);
  await server.close();
  return { result, settings };
}

async function setOsVersion(root: string, version: string): Promise<void> {
  const path = join(root, 'usr/lib/os-release');
  const text = await readFile(path, 'utf8');
  await writeFile(path, text.replace(/^VERSION_ID=.*$/m, `VERSION_ID=${version}`));
}

test('first boot creates, seeds, generates and renders; user data and generators apply once', async (t) => {
  const root = await makeRoot(t);
  await writeFile(join(root, 'user-data.toml'), gzipSync('[settings]\nmotd = "first boot"\n'));
  const first = await boot(root, join(root, 'user-data.toml'));
  t.true(first.result.storewolf.created);
  t.is(first.settings.motd, 'first boot');
  const seed = (first.settings.updates as { seed: number }).seed;
  t.true(Number.isInteger(seed) && seed >= 0 && seed <= 2047);
  t.deepEqual(first.result.generators, [{ key: 'settings.updates.seed', command: 'bork seed', status: 'generated' }]);
  t.is(first.result.apply.keys, 'all');
  t.is(await readFile(join(root, 'etc/motd'), 'utf8'), 'first boot\n');
  t.regex(await readFile(join(root, 'etc/chrony.conf'), 'utf8'), /^pool 169\.254\.169\.123 iburst$/m);

  await writeFile(join(root, 'user-data.toml'), '[settings]\nmotd = "second boot"\n');
  const second = await boot(root, join(root, 'user-data.toml'));
  t.false(second.result.storewolf.created);
  t.false(second.result.earlyBootConfig.ran);
  t.is(second.settings.motd, 'first boot');
  t.is((second.settings.updates as { seed: number }).seed, seed);
  t.deepEqual(second.result.committed, []);
});

test('user data from QEMU fw_cfg applies after the local files and before a user-data file', async (t) => {
  const root = await makeRoot(t);
  const fwCfg = join(root, 'sys/firmware/qemu_fw_cfg/by_name/opt/org.brl/user-data/raw');
  await mkdir(dirname(fwCfg), { recursive: true });
  await writeFile(fwCfg, '[settings]\nmotd = "from fw_cfg"\n[settings.updates]\nmetadata-base-url = "http://10.0.2.100:8080/metadata/"\n');
  await writeFile(join(root, 'user-data.toml'), '[settings]\nmotd = "from the file"\n');
  const { result, settings } = await boot(root, join(root, 'user-data.toml'));
  t.deepEqual(result.earlyBootConfig.providers.filter((provider) => provider.applied).map((provider) => provider.name), ['40-qemu-fw-cfg', '40-user-data-file']);
  t.is(settings.motd, 'from the file');
  t.is((settings.updates as { 'metadata-base-url': string })['metadata-base-url'], 'http://10.0.2.100:8080/metadata/');
});

test('user data without a [settings] table fails the boot with upstream\'s message', async (t) => {
  const root = await makeRoot(t);
  await writeFile(join(root, 'user-data.toml'), 'motd = "no table"\n');
  await t.throwsAsync(boot(root, join(root, 'user-data.toml')), { message: /TOML data did not contain 'settings' section/ });
});

test('user data comes from an IMDS-style URL with a session token', async (t) => {
  const root = await makeRoot(t);
  const seen: string[] = [];
  const imds = createServer((request, response) => {
    seen.push(`${request.method} ${request.url}`);
    if (request.method === 'PUT' && request.url === '/latest/api/token') {
      response.end('token-123');
    } else if (request.url === '/latest/user-data' && request.headers['x-aws-ec2-metadata-token'] === 'token-123') {
      response.end('[settings.ntp]\ntime-servers = ["10.0.0.1"]\n');
    } else {
      response.statusCode = 401;
      response.end();
    }
  });
  await new Promise<void>((resolve) => imds.listen(0, '127.0.0.1', resolve));
  t.teardown(() => imds.close());
  const { port } = imds.address() as { port: number };
  const { settings } = await boot(root, `http://127.0.0.1:${port}/latest/user-data`);
  t.deepEqual((settings.ntp as { 'time-servers': string[] })['time-servers'], ['10.0.0.1']);
  t.deepEqual(seen, ['PUT /latest/api/token', 'GET /latest/user-data']);
});

/** Caches a migration as updog leaves it: an lz4 frame of JSON plus manifest.json, under signed TUF metadata. */
async function stageMigration(root: string, migration: object, edges: Record<string, string[]> = { '(1.0.0, 1.1.0)': ['migrate_v1.1.0_motd-default.lz4'] }) {
  const compressed = execFileSync('lz4', ['-c'], { input: JSON.stringify(migration) });
  const manifest = Buffer.from(JSON.stringify({ updates: [], migrations: edges }));
  return writeSignedMigrationCache(root, { 'migrate_v1.1.0_motd-default.lz4': compressed, 'manifest.json': manifest });
}

const motdMigration = {
  'brl-migration': 1,
  version: '1.1.0',
  name: 'motd-default',
  forward: [
    { op: 'set-default', key: 'settings.motd', from: 'Welcome to Bottlerocket!', to: 'Welcome to brl!' },
    { op: 'add', key: 'settings.ntp.options', value: ['iburst', 'prefer'] },
    { op: 'transform', key: 'settings.ntp.time-servers', regex: '^2\\.amazon', replace: '3.amazon' },
    { op: 'add', key: 'settings.motd', meta: 'note', value: 'migrated' },
  ],
  backward: [
    { op: 'set-default', key: 'settings.motd', from: 'Welcome to brl!', to: 'Welcome to Bottlerocket!' },
    { op: 'transform', key: 'settings.ntp.time-servers', regex: '^3\\.amazon', replace: '2.amazon' },
    { op: 'remove', key: 'settings.motd', meta: 'note' },
  ],
};

test('the migrator moves the datastore forward and back between os-release versions', async (t) => {
  const root = await makeRoot(t);
  await boot(root);
  const base = join(root, 'var/lib/bottlerocket/datastore');
  await stageMigration(root, motdMigration);

  await setOsVersion(root, '1.1.0');
  const forward = await boot(root);
  t.deepEqual(forward.result.migrator, { from: '1.0.0', to: '1.1.0', direction: 'forward', applied: ['motd-default'] });
  t.is(forward.settings.motd, 'Welcome to brl!');
  t.deepEqual((forward.settings.ntp as { 'time-servers': string[] })['time-servers'], ['169.254.169.123', '3.amazon.pool.ntp.org']);
  t.is((await readVersionChain(base))?.version, '1.1.0');
  t.is(await readlink(join(base, 'current')), 'v1');
  t.is(await readlink(join(base, 'v1')), 'v1.1');
  t.is(await readlink(join(base, 'v1.1')), 'v1.1.0');
  t.is((await Datastore.open(base)).getMetadata('settings.motd', 'note'), 'migrated');
  t.is(await readFile(join(root, 'etc/motd'), 'utf8'), 'Welcome to brl!\n');

  await setOsVersion(root, '1.0.0');
  const backward = await boot(root);
  t.is(backward.result.migrator.direction, 'backward');
  t.is(backward.settings.motd, 'Welcome to Bottlerocket!');
  t.deepEqual((backward.settings.ntp as { 'time-servers': string[] })['time-servers'], ['169.254.169.123', '2.amazon.pool.ntp.org']);
  t.is((await readVersionChain(base))?.version, '1.0.0');
  t.is((await Datastore.open(base)).getMetadata('settings.motd', 'note'), undefined);
});

test('the migrator carries commits that were only in the commit log (the apiserver was killed before a checkpoint)', async (t) => {
  const root = await makeRoot(t);
  await boot(root);
  const base = join(root, 'var/lib/bottlerocket/datastore');
  const killed = await Datastore.open(base, { idleCheckpointMs: 3_600_000 });
  await killed.writePending('late', flatten({ ntp: { 'time-servers': ['2.amazon.example.org'] } }, ['settings']));
  await killed.commit('late');
  t.true((await readFile(join((await readVersionChain(base))!.versionDir, COMMIT_LOG))).some((byte) => byte !== 0), 'the commit is only in the log');
  await stageMigration(root, motdMigration);
  await setOsVersion(root, '1.1.0');
  const forward = await boot(root);
  t.deepEqual((forward.settings.ntp as { 'time-servers': string[] })['time-servers'], ['3.amazon.example.org']);
});

test('a migration whose bytes do not match the cached TUF metadata is refused and the datastore kept', async (t) => {
  const root = await makeRoot(t);
  await boot(root);
  const base = join(root, 'var/lib/bottlerocket/datastore');
  const before = await readVersionChain(base);
  const cache = await stageMigration(root, motdMigration);
  const cached = cache.targetFiles['migrate_v1.1.0_motd-default.lz4']!;
  await writeFile(cached, Buffer.concat([await readFile(cached), Buffer.from('x')]));
  await setOsVersion(root, '1.1.0');
  await t.throwsAsync(boot(root), { code: 'MIGRATION_TARGET_MISMATCH', message: /does not match the signed targets metadata/ } as never);
  t.deepEqual(await readVersionChain(base), before);
  t.is(await readlink(join(base, 'current')), 'v1');
  t.is(await readlink(join(base, 'v1')), 'v1.0');
});

test('a version change without cached migrations fails the boot and keeps the datastore', async (t) => {
  const root = await makeRoot(t);
  await boot(root);
  const base = join(root, 'var/lib/bottlerocket/datastore');
  await setOsVersion(root, '1.0.1');
  await t.throwsAsync(boot(root), { message: /datastore is at 1\.0\.0 and the OS at 1\.0\.1, but no migrations are cached/ });
  t.is((await readVersionChain(base))?.version, '1.0.0');
});

test('without migrations a version change re-points the links at the same datastore', async (t) => {
  const root = await makeRoot(t);
  await boot(root);
  const base = join(root, 'var/lib/bottlerocket/datastore');
  const before = (await readVersionChain(base))?.versionDir;
  await stageMigration(root, motdMigration, { '(1.0.0, 1.0.1)': [] });
  await setOsVersion(root, '1.0.1');
  const { result } = await boot(root);
  t.deepEqual(result.migrator.applied, []);
  const after = await readVersionChain(base);
  t.is(after?.version, '1.0.1');
  t.is(after?.versionDir, before);
});

test('with --disk, a good boot ends with signpost mark-successful-boot on the disk (checked with sgdisk)', async (t) => {
  const root = await makeRoot(t);
  const disk = join(root, 'disk.img');
  await makeAbDisk(disk);
  await nextBoot({ root, disk });
  t.deepEqual(sgdiskAttributeBits(disk, 7), [], 'PRIVATE has no boot-ever-succeeded bit before');
  const { result, server } = await bootHost({ root, disk, log: () => undefined });
  await server.close();
  t.is(result.signpost, 'marked-successful');
  t.deepEqual(sgdiskAttributeBits(disk, 7), [57]);
  sgdiskVerify(disk);
});
