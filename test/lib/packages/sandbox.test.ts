import test from 'ava';
import { execFile } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildPackages } from '../../../src/lib/packages/build.ts';
import { buildUser, neutralRoot, sandboxInvocation } from '../../../src/lib/packages/sandbox.ts';
import { makeProject, scriptSpec, writePackage } from './project.ts';

const execFileAsync = promisify(execFile);
const quiet = { progress: 'silent' as const, jobs: 2 };
const asRoot = process.getuid?.() === 0 ? test : test.skip;
const repoDir = fileURLToPath(new URL('../../..', import.meta.url));

/** The owners of every file and directory below `dir` (symbolic links included). */
function ownersBelow(dir: string): Set<number> {
  const owners = new Set<number>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) owners.add(lstatSync(join(entry.parentPath, entry.name)).uid);
  return owners;
}

/**
 * A probe whose %build reports its credentials as the host sees them, tries to read a root-only
 * file it can see (in its source group), and tries to write outside its build directory.
 */
function credentialProbe(projectDir: string): void {
  mkdirSync(join(projectDir, 'probe-group'));
  writeFileSync(join(projectDir, 'probe-group', 'open.txt'), 'anyone may read this\n');
  writeFileSync(join(projectDir, 'probe-group', 'secret.txt'), 'only root may read this\n');
  chmodSync(join(projectDir, 'probe-group', 'secret.txt'), 0o600);
  const spec = scriptSpec('credprobe', [
    'echo "UIDMAP $(cat /proc/self/uid_map | tr -s " " | sed "s/^ //")"',
    'echo "GIDMAP $(cat /proc/self/gid_map | tr -s " " | sed "s/^ //")"',
    'grep -E "^(CapEff|CapBnd|NoNewPrivs)" /proc/self/status | tr -d "\\t" | sed "s/^/STATUS /"',
    'if cat %{_cross_sourcesdir}/probe-group/open.txt >/dev/null; then echo READ-OPEN; fi',
    'if cat %{_cross_sourcesdir}/probe-group/secret.txt 2>&1; then echo READ-SECRET; fi',
    'if touch %{_cross_sourcesdir}/probe-group/written 2>/dev/null; then echo WROTE-SOURCES; fi',
    'if touch /%{_cross_triple}/written 2>/dev/null; then echo WROTE-SYSROOT; fi',
    'if touch /written 2>/dev/null; then echo WROTE-ROOT; fi',
    'touch "$PWD/written" && echo WROTE-BUILD',
  ].join('\n')).replace('%install\n', `%install
mkdir -p %{buildroot}%{_cross_datadir}/credprobe
cp %{_cross_sourcesdir}/probe-group/secret.txt %{buildroot}%{_cross_datadir}/credprobe/ 2>/dev/null || true
`).replace('%dir %{_cross_datadir}/credprobe\n', '%{_cross_datadir}/credprobe\n');
  writePackage(projectDir, 'credprobe', { 'credprobe.spec': spec, 'package.toml': 'source-groups = ["probe-group"]\n' });
}

test('root runs bwrap as the build user in its own user namespace, and shows it only neutral paths', (t) => {
  const options = {
    buildDir: '/root/private/work/app-x1y2z3',
    etcDir: '/root/private/work/app-x1y2z3/sandbox-etc',
    readOnlyBinds: [{ source: '/root/private/project/src/bin', target: '/tmp/brl-build/sources/src/bin' }],
    env: {},
  };
  const asUser = sandboxInvocation(options, ['true'], 1000);
  t.is(asUser.file, 'bwrap');
  t.true(asUser.args.includes('/root/private/work/app-x1y2z3'), 'another user binds its own paths, as before');

  const asRoot = sandboxInvocation(options, ['true'], 0);
  t.is(asRoot.file, 'unshare');
  const setpriv = asRoot.args.indexOf('setpriv');
  const bwrap = asRoot.args.indexOf('bwrap');
  t.true(setpriv > 0 && bwrap > setpriv);
  t.deepEqual(asRoot.args.slice(setpriv, bwrap), [
    'setpriv', `--reuid=${buildUser.uid}`, `--regid=${buildUser.gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--nnp', '--',
  ]);
  t.deepEqual(asRoot.args.slice(bwrap, bwrap + 6), ['bwrap', '--unshare-user', '--uid', '0', '--gid', '0']);
  const bwrapArgs = asRoot.args.slice(bwrap);
  t.false(bwrapArgs.some((arg) => arg.startsWith('/root/')), 'bwrap, run by the build user, sees no path below root\'s 0700 directories');
  t.true(bwrapArgs.includes(`${neutralRoot}/build`) && bwrapArgs.includes(`${neutralRoot}/ro-0`));
});

asRoot('a build started by root runs unprivileged: nobody on the host, no capabilities, no root-only file readable, nothing writable but its build directory', async (t) => {
  const projectDir = makeProject([]);
  credentialProbe(projectDir);
  writePackage(projectDir, 'fails-late', { 'fails-late.spec': scriptSpec('fails-late', 'mkdir -p made/deeper && touch made/deeper/file && ln -s /etc/shadow made/link && exit 1') });
  const result = await buildPackages(projectDir, { ...quiet, names: ['credprobe', 'fails-late'] });
  const [probe, failed] = result.packages;
  t.is(probe?.status, 'built', probe?.logTail?.join('\n'));
  const log = readFileSync(probe?.logPath as string, 'utf8');
  t.regex(log, new RegExp(`^UIDMAP 0 ${buildUser.uid} 1$`, 'm'), 'uid 0 in the sandbox is the build user on the host');
  t.regex(log, new RegExp(`^GIDMAP 0 ${buildUser.gid} 1$`, 'm'));
  t.regex(log, /^STATUS CapEff:0000000000000000$/m);
  t.regex(log, /^STATUS CapBnd:0000000000000000$/m);
  t.regex(log, /^STATUS NoNewPrivs:1$/m);
  t.regex(log, /^READ-OPEN$/m, 'the source group itself is readable');
  t.regex(log, /secret\.txt: Permission denied/);
  t.notRegex(log, /^READ-SECRET$/m);
  t.notRegex(log, /^WROTE-(SOURCES|SYSROOT|ROOT)$/m);
  t.regex(log, /^WROTE-BUILD$/m);
  const listed = (await execFileAsync('rpm', ['-qpl', '--nosignature', probe?.rpms[0] as string])).stdout.trim().split('\n');
  t.deepEqual(listed.map((path) => path.replace(/^.*\/share\//, '/share/')), ['/share/credprobe'], 'the RPM holds no copy of the secret');

  // Everything the builds left (RPMs, logs, the failed build's kept work directory) is root's again.
  t.is(failed?.status, 'failed');
  const kept = readdirSync(join(projectDir, 'build', 'work', 'x86_64')).filter((name) => name.startsWith('fails-late-'));
  t.is(kept.length, 1);
  t.true(lstatSync(join(projectDir, 'build', 'work', 'x86_64', kept[0] as string, 'BUILD', 'made', 'deeper', 'file')).isFile());
  t.deepEqual([...ownersBelow(join(projectDir, 'build'))], [0]);
  t.is(statSync('/etc/shadow').uid, 0, 'the kept symbolic link was changed, not what it points at');
});

asRoot('a build started by another user runs as that user, as before', async (t) => {
  // Below /tmp itself: the test's own temporary directory is root's 0700 one.
  const projectDir = mkdtempSync('/tmp/brl-user-build-');
  t.teardown(() => rmSync(projectDir, { recursive: true, force: true }));
  mkdirSync(join(projectDir, 'packages-specs'));
  writePackage(projectDir, 'userprobe', { 'userprobe.spec': scriptSpec('userprobe', 'echo "BUILDING AS $(id -u):$(id -g)"') });
  const user = 4242;
  await execFileAsync('chown', ['-R', `${user}:${user}`, projectDir]);
  const script = `import { buildPackages } from ${JSON.stringify(join(repoDir, 'src/lib/packages/build.ts'))};
const result = await buildPackages(${JSON.stringify(projectDir)}, { progress: 'silent', names: ['userprobe'] });
console.log(JSON.stringify(result.packages[0]));`;
  const { stdout } = await execFileAsync('setpriv', [`--reuid=${user}`, `--regid=${user}`, '--clear-groups', '--', process.execPath, '--input-type=module', '-e', script], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: projectDir },
  });
  const built = JSON.parse(stdout.trim().split('\n').at(-1) as string) as { status: string; rpms: string[]; logPath: string; logTail?: string[] };
  t.is(built.status, 'built', built.logTail?.join('\n'));
  t.regex(readFileSync(built.logPath, 'utf8'), new RegExp(`^BUILDING AS ${user}:${user}$`, 'm'));
  t.is(statSync(built.rpms[0] as string).uid, user);
});
