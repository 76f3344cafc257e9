import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'smol-toml';
import { repoDir } from '../../helpers/cli.ts';
import { buildPackages } from '../../../src/lib/packages/build.ts';
import { PARTITION_TYPE } from '../../../src/lib/image/layout.ts';
import { makeAbDisk, sgdiskAttributeBits, sgdiskVerify } from '../signpost/fixtures.ts';

const execFileAsync = promisify(execFile);
const rpmQuery = async (rpm: string, args: string[]): Promise<string[]> =>
  (await execFileAsync('rpm', ['-qp', '--nosignature', '--nodigest', ...args, rpm])).stdout.trim().split('\n');
const sysrootPrefix = '/x86_64-bottlerocket-linux-gnu/sys-root';

// One build (or the project's cached outputs) shared by the tests below.
const built = buildPackages(repoDir, { names: ['release', 'glibc', 'node-runtime', 'brl-host', 'settings-defaults'], progress: 'silent' });
async function rpmsOf(name: string): Promise<string[]> {
  const result = await built;
  const pkg = result.packages.find((entry) => entry.name === name);
  if (pkg === undefined || pkg.status === 'failed') throw new Error(`${name}: ${pkg?.error}\n${pkg?.logTail?.join('\n')}`);
  return pkg.rpms;
}

const roots: string[] = [];
test.after.always(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

test('the brl-host RPM ships the launchers, their bundles and the boot units, and requires only node-runtime', async (t) => {
  const [rpm] = await rpmsOf('brl-host');
  t.regex(basename(rpm as string), /^bottlerocket-brl-host-0\.1\.0-1\..*\.noarch\.rpm$/);
  const files = (await rpmQuery(rpm as string, ['--qf', '[%{FILENAMES} %{FILEMODES:perms}\n]'])).filter((line) => !line.includes('/licenses/'));
  const programs = ['api-bridge', 'apiclient', 'apiserver', 'host-boot', 'host-containers', 'host-ctr', 'signpost', 'updog'];
  const inUsrLib = (path: string) => files.filter((line) => line.startsWith(`${sysrootPrefix}/usr/lib/${path}`)).map((line) => line.slice(sysrootPrefix.length));
  t.deepEqual(files.filter((line) => line.includes('/usr/bin/')), programs.map((program) => `${sysrootPrefix}/usr/bin/${program} -rwxr-xr-x`));
  const bundles = inUsrLib('brl');
  const chunks = bundles.filter((line) => /^\/usr\/lib\/brl\/chunk-[A-Z0-9]{8}\.js -rw-r--r--$/.test(line));
  t.true(chunks.length > 0, 'the programs share chunks (esbuild --splitting)');
  t.deepEqual(
    bundles.filter((line) => !chunks.includes(line)),
    ['/usr/lib/brl drwxr-xr-x', ...[...programs, 'lz4-worker', 'verity-worker'].sort().map((bundle) => `/usr/lib/brl/${bundle}.js -rw-r--r--`)],
  );
  const boot = ['migrator', 'storewolf', 'apiserver', 'early-boot-config', 'sundog', 'settings-applier', 'mark-successful-boot'];
  const wanted = inUsrLib('systemd/system/multi-user.target.wants/').map((line) => line.split(' ')[0]?.split('/').pop());
  t.deepEqual(wanted, [...boot.map((unit) => `${unit}.service`), 'systemd-networkd.service'].sort());
  t.deepEqual(inUsrLib('systemd/system/local-fs.target.wants/').map((line) => line.split(' ')[0]?.split('/').pop()), ['etc.mount', 'prepare-local.service']);
  t.true(inUsrLib('systemd/system/api-bridge.service').length === 1, 'shipped, but enabled only by the api-bridge feature');
  t.false(wanted.includes('api-bridge.service'));
  t.true(inUsrLib('systemd/system/host-containers@.service').length === 1, 'a template the host-containers restart command enables per container');
  const requires = (await rpmQuery(rpm as string, ['-R'])).filter((line) => !line.startsWith('rpmlib('));
  t.deepEqual(requires, ['bottlerocket-node-runtime']);
  const licenses = await rpmQuery(rpm as string, ['-l']);
  for (const bundled of ['tuf-js', 'smol-toml', 'handlebars', '@grpc/grpc-js', 'protobufjs']) t.true(licenses.some((path) => path.includes(`/licenses/bottlerocket-brl-host/${bundled}/`)), bundled);
});

test('settings-defaults picks its dev subpackage by the variant capability and ships merged defaults', async (t) => {
  const rpms = await rpmsOf('settings-defaults');
  const [base, dev] = rpms.sort();
  t.regex(basename(dev as string), /^bottlerocket-settings-defaults-dev-/);
  t.deepEqual((await rpmQuery(base as string, ['-R'])).filter((line) => !line.startsWith('rpmlib(')), [
    '(bottlerocket-settings-defaults-dev if bottlerocket-variant(dev))',
    'bottlerocket-settings-defaults(any)',
  ]);
  t.true((await rpmQuery(dev as string, ['-R'])).includes('bottlerocket-variant(dev)'));
  t.true((await rpmQuery(dev as string, ['--provides'])).includes('bottlerocket-settings-defaults(any)'));
  t.deepEqual(await rpmQuery(dev as string, ['--conflicts']), ['bottlerocket-settings-defaults(any)']);
  t.deepEqual(
    (await rpmQuery(dev as string, ['-l'])).map((path) => path.slice(sysrootPrefix.length)),
    ['/etc/storewolf', '/etc/storewolf/defaults.toml', '/etc/updog.toml', '/usr/share/brl', '/usr/share/brl/settings-model.toml', '/usr/share/storewolf', '/usr/share/storewolf/dev.toml'],
  );
});

test('a root made only from the RPMs boots, serves apiclient, renders its files and flips a disk with signpost', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'brl-host-root-'));
  roots.push(root);
  const rpms = (await Promise.all(['release', 'glibc', 'node-runtime', 'brl-host', 'settings-defaults'].map(rpmsOf))).flat();
  await execFileAsync('rpm', ['--root', root, '--dbpath', '/.rpmdb', '-i', '--nodeps', '--noscripts', '--nosignature', ...rpms]);
  const sysroot = join(root, sysrootPrefix);
  const chroot = (args: string[]) => execFileAsync('chroot', [sysroot, ...args], { env: { PATH: '/usr/sbin:/usr/bin' } });

  t.regex((await chroot(['/usr/bin/apiclient', '--help'])).stdout, /^Usage: apiclient/);
  t.regex((await chroot(['/usr/bin/updog', '--help'])).stdout, /Usage: updog/);

  // The image build appends the version to os-release; the boot sequence needs it.
  appendFileSync(join(sysroot, 'usr/lib/os-release'), 'VARIANT_ID=dev\nVERSION_ID=0.1.0\nBUILD_ID=test\n');
  t.is(readlinkSync(join(sysroot, 'etc/storewolf/defaults.toml')), '../../usr/share/storewolf/dev.toml');
  const boot = await chroot(['/usr/bin/host-boot', '--exit']);
  t.regex(boot.stderr, /storewolf\s+created the datastore/);
  t.is(readFileSync(join(sysroot, 'etc/motd'), 'utf8'), 'Welcome to Bottlerocket!\n');
  // Rendered from the settings: the variant's local repository and the seed the host generated.
  const updog = parse(readFileSync(join(sysroot, 'etc/updog.toml'), 'utf8')) as Record<string, unknown>;
  t.is(updog.metadata_base_url, 'http://127.0.0.1:8080/dev/x86_64/');
  t.is(updog.targets_base_url, 'http://127.0.0.1:8080/targets/');
  t.true(typeof updog.seed === 'number' && updog.seed >= 0 && updog.seed < 2048);

  // Booted again and left serving: apiclient changes a setting and the API renders /etc/motd.
  const server = spawn('chroot', [sysroot, '/usr/bin/host-boot'], { env: { PATH: '/usr/sbin:/usr/bin' }, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)));
  let serverLog = '';
  server.stderr.on('data', (chunk: Buffer) => (serverLog += chunk.toString()));
  try {
    for (let waited = 0; !serverLog.includes('serving the API'); waited += 50) {
      if (waited > 20_000) throw new Error(`host-boot did not start serving:\n${serverLog}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await chroot(['/usr/bin/apiclient', 'set', 'motd=hi from the RPMs']);
    // As upstream, commit_and_apply answers once committed and renders right after.
    const motd = join(sysroot, 'etc/motd');
    for (let waited = 0; readFileSync(motd, 'utf8') !== 'hi from the RPMs\n' && waited < 5000; waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    t.is(readFileSync(motd, 'utf8'), 'hi from the RPMs\n');
    t.regex((await chroot(['/usr/bin/apiclient', 'get', 'settings.motd'])).stdout, /hi from the RPMs/);
  } finally {
    server.kill('SIGTERM');
  }
  t.is(await exited, 0, serverLog);

  // signpost reads the booted BOOT partition from the record `brl signpost next-boot` leaves.
  const table = await makeAbDisk(join(sysroot, 'disk.img'));
  const bootA = table.partitions.find((partition) => partition.typeGuid === PARTITION_TYPE.boot);
  mkdirSync(join(sysroot, 'run/signpost'), { recursive: true });
  writeFileSync(join(sysroot, 'run/signpost/booted-boot-partuuid'), `${bootA?.uniqueGuid}\n`);
  const status = await chroot(['/usr/bin/signpost', 'status', '--disk', '/disk.img', '--json']);
  const sets = (JSON.parse(status.stdout) as { sets: Array<{ label: string; active: boolean; boot: { partUuid: string } }> }).sets;
  t.deepEqual(sets.map((set) => [set.label, set.active]), [['A', true], ['B', false]]);
  t.is(sets[0]?.boot.partUuid, bootA?.uniqueGuid);
  // A write through the bundled GPT code leaves a table sgdisk accepts, with B's priority raised.
  await chroot(['/usr/bin/signpost', 'mark-inactive-valid', '--disk', '/disk.img']);
  await chroot(['/usr/bin/signpost', 'upgrade-to-inactive', '--disk', '/disk.img']);
  sgdiskVerify(join(sysroot, 'disk.img'));
  t.deepEqual(sgdiskAttributeBits(join(sysroot, 'disk.img'), 4).filter((bit) => bit >= 48 && bit < 52), [49]);
});
