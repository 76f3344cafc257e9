import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { brl, repoDir, type CliResult } from '../helpers/cli.ts';
import { prepareRoot } from '../../src/lib/host/boot/prepare-root.ts';
import { readVersionChain } from '../../src/lib/host/datastore/layout.ts';
import { Datastore } from '../../src/lib/host/datastore/store.ts';
import { buildRelease, makeHost, startRepository, type TestHost, type TestRepository } from '../lib/updog/fixtures.ts';

// A host at 1.0.0 with a booted datastore; the signed repository publishes 1.1.0 with a real
// declarative migration from 1.0.0 to 1.1.0. bin/updog caches it, `brl host boot` on the root
// now saying 1.1.0 migrates the datastore, verified offline against the baked TUF root.
const MIGRATION = 'migrate_v1.1.0_motd-and-ntp.lz4';
const migration = {
  'brl-migration': 1,
  version: '1.1.0',
  name: 'motd-and-ntp',
  forward: [
    { op: 'set-default', key: 'settings.motd', from: 'Welcome to Bottlerocket!', to: 'Welcome to brl 1.1!' },
    { op: 'transform', key: 'settings.ntp.time-servers', regex: '^2\\.amazon', replace: '3.amazon' },
  ],
  backward: [
    { op: 'transform', key: 'settings.ntp.time-servers', regex: '^3\\.amazon', replace: '2.amazon' },
    { op: 'set-default', key: 'settings.motd', from: 'Welcome to brl 1.1!', to: 'Welcome to Bottlerocket!' },
  ],
};

let repo: TestRepository;

test.before(async () => {
  const release = await buildRelease('1.1.0');
  const compressed = execFileSync('lz4', ['-9', '-c'], { input: JSON.stringify(migration) });
  repo = await startRepository([release], { [MIGRATION]: compressed }, { '(1.0.0, 1.1.0)': [MIGRATION] });
});

test.after.always(async () => {
  await repo?.server.close();
});

function updog(host: TestHost, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(join(repoDir, 'bin', 'updog'), [...args, '--root', host.root, '--disk', host.disk], (error, stdout, stderr) => {
      resolve({ stdout, stderr, exitCode: error ? (typeof error.code === 'number' ? error.code : 1) : 0 });
    });
  });
}

async function setVersion(host: TestHost, version: string): Promise<void> {
  const path = join(host.root, 'usr', 'lib', 'os-release');
  await writeFile(path, (await readFile(path, 'utf8')).replace(/^VERSION_ID=.*$/m, `VERSION_ID=${version}`));
}

/** A 1.0.0 host whose datastore was created by a first boot, with 1.1.0 staged by bin/updog. */
async function updatedHost(): Promise<TestHost> {
  const host = await makeHost(repo, '1.0.0');
  await prepareRoot({ root: host.root, variant: 'dev', version: '1.0.0', writeOsRelease: false });
  // The first boot renders /etc/updog.toml from the settings: point them at the test repository.
  const userData = join(host.dir, 'user-data.toml');
  await writeFile(userData, `[settings.updates]\nmetadata-base-url = "${repo.metadataBaseUrl}"\ntargets-base-url = "${repo.targetsBaseUrl}"\n`);
  const first = await brl(['host', 'boot', '--root', host.root, '--user-data', userData, '--exit', '--json']);
  if (first.exitCode !== 0) throw new Error(`first boot failed: ${first.stderr}`);
  const update = await updog(host, ['update', '--now']);
  if (update.exitCode !== 0) throw new Error(`updog update failed: ${update.stderr}`);
  await setVersion(host, '1.1.0');
  return host;
}

const datastore = (host: TestHost) => join(host.root, 'var', 'lib', 'bottlerocket', 'datastore');

test('updog caches the migration and the next boot of 1.1.0 migrates the datastore with it', async (t) => {
  const host = await updatedHost();
  t.true((await readdir(join(host.root, 'var', 'lib', 'bottlerocket-migrations'))).some((name) => name.endsWith(`.${MIGRATION}`)));

  const boot = await brl(['host', 'boot', '--root', host.root, '--exit', '--json']);
  t.is(boot.exitCode, 0, boot.stdout + boot.stderr);
  const result = JSON.parse(boot.stdout) as { migrator: unknown };
  t.deepEqual(result.migrator, { from: '1.0.0', to: '1.1.0', direction: 'forward', applied: ['motd-and-ntp'] });
  t.is((await readVersionChain(datastore(host)))?.version, '1.1.0');
  const store = await Datastore.open(datastore(host));
  const settings = store.document(['settings']) as { motd: string; ntp: Record<string, unknown> };
  t.is(settings.motd, 'Welcome to brl 1.1!');
  t.deepEqual(settings.ntp['time-servers'], ['169.254.169.123', '3.amazon.pool.ntp.org']);
  t.is(await readFile(join(host.root, 'etc', 'motd'), 'utf8'), 'Welcome to brl 1.1!\n', 'the migrated setting is what the boot rendered');
});

test('a tampered cached migration is refused at boot and the datastore stays at 1.0.0', async (t) => {
  const host = await updatedHost();
  const targetsDir = join(host.root, 'var', 'lib', 'bottlerocket-migrations');
  const cached = join(targetsDir, (await readdir(targetsDir)).find((name) => name.endsWith(`.${MIGRATION}`))!);
  const evil = execFileSync('lz4', ['-9', '-c'], { input: JSON.stringify({ ...migration, forward: [{ op: 'remove', key: 'settings', prefix: true }] }) });
  await writeFile(cached, evil);
  const chainBefore = await readVersionChain(datastore(host));

  const boot = await brl(['host', 'boot', '--root', host.root, '--exit', '--json']);
  t.not(boot.exitCode, 0);
  t.regex(boot.stdout + boot.stderr, /does not match the signed targets metadata/);
  t.deepEqual(await readVersionChain(datastore(host)), chainBefore);
  const settings = (await Datastore.open(datastore(host))).document(['settings']) as { motd: string };
  t.is(settings.motd, 'Welcome to Bottlerocket!');
});
