import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, createConnection } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildPackages } from '../../../src/lib/packages/build.ts';
import { makeProject, scriptSpec, writePackage } from './project.ts';

const execFileAsync = promisify(execFile);
const quiet = { progress: 'silent' as const, jobs: 2 };

async function rpmQuery(rpm: string, format: string): Promise<string> {
  return (await execFileAsync('rpm', ['-qp', '--nosignature', '--nodigest', '--queryformat', format, rpm])).stdout;
}

test('builds a package against its build dependency and writes an RPM that rpm reads back', async (t) => {
  const projectDir = makeProject(['base', 'app']);
  const result = await buildPackages(projectDir, { ...quiet, names: ['app'] });
  t.deepEqual(result.packages.map((pkg) => [pkg.name, pkg.status]), [['base', 'built'], ['app', 'built']]);

  const [rpm] = result.packages[1]?.rpms ?? [];
  const dist = result.packages[1]?.dist as string;
  t.regex(dist, /^\.[0-9a-f]{12}\.br1$/);
  t.is(rpm, join(projectDir, 'build', 'rpms', 'x86_64', 'app', `bottlerocket-app-0.3-1${dist}.x86_64.rpm`));
  t.is(await rpmQuery(rpm as string, '%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{BUILDHOST}'), `bottlerocket-app 0.3 1${dist} x86_64 brl-build`);
  const requires = (await rpmQuery(rpm as string, '[%{REQUIRENAME}\n]')).split('\n');
  t.true(requires.includes('bottlerocket-base'));
  t.true(requires.some((name) => name.startsWith('libc.so.6')));
  t.is(await rpmQuery(rpm as string, '[%{FILENAMES}\n]'), '/x86_64-bottlerocket-linux-gnu/sys-root/usr/bin/app\n');
  const [baseRpm] = result.packages[0]?.rpms ?? [];
  t.is(
    await rpmQuery(baseRpm as string, '[%{FILENAMES}\n]'),
    '/x86_64-bottlerocket-linux-gnu/sys-root/etc/base\n/x86_64-bottlerocket-linux-gnu/sys-root/usr/share/base/marker.txt\n',
  );
  t.is(await rpmQuery(baseRpm as string, '[%{PROVIDENAME}\n]'), 'bottlerocket-base\nbottlerocket-base-marker\n');
});

test('a second build rebuilds nothing, and a changed source rebuilds only what it affects', async (t) => {
  const projectDir = makeProject(['base', 'app']);
  await buildPackages(projectDir, { ...quiet, all: true });
  const appDir = join(projectDir, 'build', 'rpms', 'x86_64', 'app');
  const before = readFileSync(join(appDir, '.brl-build.json'), 'utf8');

  const again = await buildPackages(projectDir, { ...quiet, all: true });
  t.deepEqual(again.packages.map((pkg) => pkg.status), ['cached', 'cached']);
  t.is(readFileSync(join(appDir, '.brl-build.json'), 'utf8'), before);

  writeFileSync(join(projectDir, 'packages-specs', 'app', 'app.c'), readFileSync(join(projectDir, 'packages-specs', 'app', 'app.c'), 'utf8').replace('app %s', 'app: %s'));
  const changed = await buildPackages(projectDir, { ...quiet, all: true });
  t.deepEqual(changed.packages.map((pkg) => [pkg.name, pkg.status]), [['base', 'cached'], ['app', 'built']]);
  t.deepEqual(changed.packages[1]?.rebuildReasons, ['localSources: app.c']);
  t.deepEqual(readdirSync(appDir).filter((name) => name.endsWith('.rpm')).length, 1);
});

test('a rebuild with the same inputs produces byte-identical RPMs', async (t) => {
  const projectDir = makeProject(['base', 'app']);
  const digest = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
  const first = await buildPackages(projectDir, { ...quiet, all: true });
  const firstDigests = first.packages.flatMap((pkg) => pkg.rpms.map(digest));
  const forced = await buildPackages(projectDir, { ...quiet, all: true, force: true });
  t.deepEqual(forced.packages.map((pkg) => pkg.status), ['built', 'built']);
  t.deepEqual(forced.packages.flatMap((pkg) => pkg.rpms.map(digest)), firstDigests);
});

test('a spec that opens a network socket fails inside the sandbox', async (t) => {
  const connections: string[] = [];
  const server = createServer((socket) => {
    connections.push(String(socket.remoteAddress));
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  try {
    // The same connection from the host succeeds, so a failure below is the sandbox's doing.
    await new Promise<void>((resolve, reject) => createConnection(port, '127.0.0.1', resolve).on('error', reject).on('connect', function (this: { destroy(): void }) { this.destroy(); }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    t.is(connections.length, 1);

    const projectDir = makeProject([]);
    writePackage(projectDir, 'netprobe', {
      'netprobe.spec': scriptSpec('netprobe', `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}' && echo CONNECTED`),
    });
    const result = await buildPackages(projectDir, { ...quiet, names: ['netprobe'] });
    const [probe] = result.packages;
    t.is(probe?.status, 'failed');
    t.regex(probe?.error ?? '', /rpmbuild failed/);
    const log = readFileSync(probe?.logPath as string, 'utf8');
    t.regex(log, /Connection refused|Network is unreachable/);
    t.notRegex(log, /^CONNECTED$/m);
    t.is(connections.length, 1, 'the server saw no connection from the build');
  } finally {
    server.close();
  }
});

test('the build sees the host read-only and only its build directory writable', async (t) => {
  const projectDir = makeProject([]);
  writePackage(projectDir, 'writer', {
    'writer.spec': scriptSpec('writer', [
      `if touch ${projectDir}/escaped 2>/dev/null; then echo WROTE-PROJECT; fi`,
      'if touch /usr/escaped 2>/dev/null; then echo WROTE-USR; fi',
      'touch "$PWD/inside" && echo WROTE-BUILD',
      'touch /tmp/private && echo WROTE-TMP',
    ].join('\n')),
  });
  const result = await buildPackages(projectDir, { ...quiet, names: ['writer'] });
  t.is(result.packages[0]?.status, 'built');
  const log = readFileSync(result.packages[0]?.logPath as string, 'utf8');
  t.regex(log, /^WROTE-BUILD$/m);
  t.regex(log, /^WROTE-TMP$/m);
  t.notRegex(log, /^WROTE-(PROJECT|USR)$/m);
  t.false(existsSync(join(projectDir, 'escaped')));
  t.false(existsSync('/usr/escaped'));
});

test('the build sees none of the host\'s /etc, /var or /opt: a probe RPM ships no host file', async (t) => {
  const projectDir = makeProject([]);
  // Host files a spec could try to publish: secrets in /etc, package state in /var, anything in /opt.
  const hostFiles = ['/etc/shadow', '/etc/hostname', '/etc/apt/sources.list', '/var/lib/dpkg/status', '/var/log', '/opt'].filter((path) => existsSync(path));
  t.true(hostFiles.includes('/etc/shadow') && hostFiles.includes('/var/lib/dpkg/status'), 'the probe has something to find on this host');
  const spec = scriptSpec('probe', 'true').replace('%install\n', `%install
mkdir -p %{buildroot}%{_cross_datadir}/probe
for path in ${hostFiles.join(' ')}; do
  if cp -a "$path" %{buildroot}%{_cross_datadir}/probe/ 2>/dev/null; then echo "COPIED $path"; else echo "HIDDEN $path"; fi
done
echo "PASSWD $(cut -d: -f1 /etc/passwd | tr '\\n' ' ')"
`).replace('%dir %{_cross_datadir}/probe\n', '%{_cross_datadir}/probe\n');
  writePackage(projectDir, 'probe', { 'probe.spec': spec });
  const result = await buildPackages(projectDir, { ...quiet, names: ['probe'] });
  t.is(result.packages[0]?.status, 'built', result.packages[0]?.error);
  const log = readFileSync(result.packages[0]?.logPath as string, 'utf8');
  for (const path of hostFiles) t.regex(log, new RegExp(`^HIDDEN ${path}$`, 'm'), path);
  t.regex(log, /^PASSWD root nobody $/m, 'a generated passwd, not the host\'s');
  const [rpm] = result.packages[0]?.rpms ?? [];
  const listed = (await execFileAsync('rpm', ['-qpl', '--nosignature', rpm as string])).stdout.trim().split('\n');
  t.deepEqual(listed.map((path) => path.replace(/^.*\/share\//, '/share/')), ['/share/probe']);
});

test('a binary failing the hardening check fails its build unless package.toml allows it with a reason', async (t) => {
  const projectDir = makeProject(['nopie']);
  const strict = await buildPackages(projectDir, { ...quiet, names: ['nopie'] });
  t.is(strict.packages[0]?.status, 'failed');
  t.regex(strict.packages[0]?.error ?? '', /hardening check failed:\n {2}\/usr\/bin\/nopie \(executable in bottlerocket-nopie-[^)]+\): fails pie, relro, nx-stack, stack-protector/);
  t.false(existsSync(join(projectDir, 'build', 'rpms', 'x86_64', 'nopie')), 'no RPM is published for a failed check');

  writePackage(projectDir, 'nopie', {
    'package.toml': `[[hardening-exceptions]]
file = "/usr/bin/nopie"
checks = ["pie", "relro", "nx-stack", "stack-protector"]
reason = "test fixture built without hardening on purpose"
`,
  });
  const allowed = await buildPackages(projectDir, { ...quiet, names: ['nopie'] });
  t.is(allowed.packages[0]?.status, 'built');
  t.is(allowed.packages[0]?.allowedHardening?.length, 4);
  t.is(allowed.packages[0]?.allowedHardening?.[0]?.reason, 'test fixture built without hardening on purpose');
});

test('a failed build shows its log tail and does not stop unrelated builds; its dependents are not built', async (t) => {
  const projectDir = makeProject(['base', 'broken']);
  writePackage(projectDir, 'needs-broken', {
    'needs-broken.spec': scriptSpec('needs-broken', 'true'),
    'package.toml': 'build-dependencies = ["broken"]\n',
  });
  const result = await buildPackages(projectDir, { ...quiet, all: true });
  const byName = new Map(result.packages.map((pkg) => [pkg.name, pkg]));
  t.is(byName.get('base')?.status, 'built');
  t.is(byName.get('broken')?.status, 'failed');
  t.is(byName.get('broken')?.error, `${join(projectDir, 'packages-specs', 'broken', 'broken.spec')}:6: Unknown tag: Frobnicate: yes`);
  t.true(byName.get('broken')?.logTail?.some((line) => line.includes('Unknown tag')));
  t.true(existsSync(join(projectDir, 'build', 'logs', 'x86_64', 'broken.log')));
  t.is(byName.get('needs-broken')?.status, 'failed');
  t.is(byName.get('needs-broken')?.error, 'not built: build dependency "broken" failed');
});

test('external files come from the lookaside cache into SOURCES', async (t) => {
  const projectDir = makeProject([]);
  const content = 'pinned upstream content\n';
  const sha512 = createHash('sha512').update(content).digest('hex');
  const cached = join(projectDir, '.lookaside', 'upstream.txt', sha512, 'upstream.txt');
  mkdirSync(join(cached, '..'), { recursive: true });
  writeFileSync(cached, content);
  writePackage(projectDir, 'uses-external', {
    'package.toml': `[[external-files]]\nurl = "https://example.invalid/dl/upstream.txt"\nsha512 = "${sha512}"\n`,
    'uses-external.spec': scriptSpec('uses-external', 'grep -q "pinned upstream content" %{_sourcedir}/upstream.txt'),
  });
  const result = await buildPackages(projectDir, { ...quiet, names: ['uses-external'] });
  t.is(result.packages[0]?.status, 'built', result.packages[0]?.logTail?.join('\n'));
  t.is(readFileSync(cached, 'utf8'), content);
});

test('a source that cannot be fetched fails its package with the fetch error; the others still build', async (t) => {
  const projectDir = makeProject(['base']);
  writeFileSync(join(projectDir, 'brl.toml'), '[fetch]\nlookaside-caches = []\nupstream-fallback = true\n');
  writePackage(projectDir, 'unfetchable', {
    'package.toml': `[[external-files]]\nurl = "file:///nonexistent/src.tar.gz"\nsha512 = "${'a'.repeat(128)}"\n`,
    'unfetchable.spec': scriptSpec('unfetchable', 'true'),
  });
  const result = await buildPackages(projectDir, { ...quiet, all: true });
  const byName = new Map(result.packages.map((pkg) => [pkg.name, pkg]));
  t.is(byName.get('base')?.status, 'built');
  t.is(byName.get('unfetchable')?.status, 'failed');
  t.regex(byName.get('unfetchable')?.error ?? '', /could not fetch src\.tar\.gz \(package unfetchable\)/);
});

test('concurrent builds of the same project build each package once; the other waits and finds it cached', async (t) => {
  const projectDir = makeProject(['base', 'app']);
  const [first, second] = await Promise.all([
    buildPackages(projectDir, { ...quiet, all: true }),
    buildPackages(projectDir, { ...quiet, all: true }),
  ]);
  for (const name of ['base', 'app']) {
    const statuses = [first, second].map((result) => result.packages.find((pkg) => pkg.name === name)?.status).sort();
    t.deepEqual(statuses, ['built', 'cached'], name);
  }
  t.false(existsSync(join(projectDir, 'build', 'locks', 'x86_64', 'app.lock')), 'locks are released');
});

test('a lock left by a process that no longer exists is taken over', async (t) => {
  const projectDir = makeProject(['base']);
  const lock = join(projectDir, 'build', 'locks', 'x86_64', 'base.lock');
  mkdirSync(join(lock, '..'), { recursive: true });
  writeFileSync(lock, '999999999');
  const result = await buildPackages(projectDir, { ...quiet, names: ['base'] });
  t.is(result.packages[0]?.status, 'built');
});

test('a named package whose directory lacks its spec is reported as such, not as unknown', async (t) => {
  const project = makeProject(['base']);
  mkdirSync(join(project, 'packages-specs', 'half'));
  await t.throwsAsync(buildPackages(project, { names: ['half'], progress: 'silent' }), {
    message: /package "half" has no spec: .*half\/half\.spec does not exist/,
  });
});
