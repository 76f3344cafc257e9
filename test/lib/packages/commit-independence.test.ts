import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { buildPackages, type BuildPackagesResult } from '../../../src/lib/packages/build.ts';
import { packageSourceDateEpoch } from '../../../src/lib/packages/macros.ts';
import { queryRpm } from '../../../src/lib/packages/rpm.ts';
import { manifestPackages } from '../../../src/lib/variant/build-manifest.ts';
import { cycloneDxDocument, type SbomSubject } from '../../../src/lib/variant/sbom.ts';
import { makeProject, scriptSpec, writePackage } from './project.ts';

const execFileAsync = promisify(execFile);
const quiet = { progress: 'silent' as const, jobs: 2 };
const commitA = 1700000000;
const commitB = 1700086400;

function git(projectDir: string, epoch: number, ...args: string[]): string {
  return execFileSync('git', ['-C', projectDir, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args], {
    env: { ...process.env, GIT_COMMITTER_DATE: `${epoch} +0000`, GIT_AUTHOR_DATE: `${epoch} +0000` },
  }).toString();
}

/** A probe that records the SOURCE_DATE_EPOCH it ran under and ships a file written during the build (a fresh mtime). */
function probeSpec(): string {
  return scriptSpec('probe', 'echo "$SOURCE_DATE_EPOCH" > seen-epoch').replace('%install\n', `%install
install -D -m 0644 seen-epoch %{buildroot}%{_cross_datadir}/probe/seen-epoch
`).replace('%dir %{_cross_datadir}/probe\n', '%{_cross_datadir}/probe\n');
}

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
const rpmsOf = (result: BuildPackagesResult): string[] => result.packages.flatMap((pkg) => pkg.rpms);

/** What a variant build takes from the RPMs: file names and bytes, build-manifest records, SBOM components. */
async function outputsOf(result: BuildPackagesResult): Promise<unknown> {
  const packages = await Promise.all(rpmsOf(result).map(queryRpm));
  const subject: SbomSubject = { imageName: 'probe', variant: 'probe', arch: 'x86_64', version: '1.0.0', buildId: 'abcdef12', epoch: commitB, toolVersion: '0', rootHash: '0', bootSigning: { signed: false } };
  return {
    rpms: rpmsOf(result).map((rpm) => [basename(rpm), sha256(rpm)]),
    manifest: manifestPackages(packages),
    sbom: (cycloneDxDocument(subject, packages) as { components: unknown[] }).components,
  };
}

test('a package\'s bytes do not depend on the commit: a cache filled at another commit gives what an empty cache builds', async (t) => {
  const cachedProject = makeProject(['base']);
  writePackage(cachedProject, 'probe', { 'probe.spec': probeSpec(), 'package.toml': 'build-dependencies = ["base"]\n' });
  git(cachedProject, commitA, 'init', '-q');
  git(cachedProject, commitA, 'add', '.');
  git(cachedProject, commitA, 'commit', '-q', '-m', 'A');
  const atA = await buildPackages(cachedProject, { ...quiet, all: true });
  t.deepEqual(atA.packages.map((pkg) => pkg.status), ['built', 'built']);

  // Commit B changes nothing a package reads: the cache from A is used, and must hold what B would build.
  git(cachedProject, commitB, 'commit', '-q', '--allow-empty', '-m', 'B');
  const fromCache = await buildPackages(cachedProject, { ...quiet, all: true });
  t.deepEqual(fromCache.packages.map((pkg) => pkg.status), ['cached', 'cached']);

  const freshProject = mkdtempSync(join(tmpdir(), 'brl-packages-'));
  execFileSync('git', ['clone', '-q', cachedProject, freshProject]);
  t.is(git(freshProject, 0, 'log', '-1', '--format=%ct'), `${commitB}\n`);
  const fresh = await buildPackages(freshProject, { ...quiet, all: true });
  t.deepEqual(fresh.packages.map((pkg) => pkg.status), ['built', 'built']);
  t.deepEqual(await outputsOf(fresh), await outputsOf(fromCache));

  // A SOURCE_DATE_EPOCH in the environment is the image build's; it does not reach the packages either.
  process.env.SOURCE_DATE_EPOCH = '1600000000';
  try {
    const forced = await buildPackages(freshProject, { ...quiet, all: true, force: true });
    t.deepEqual(await outputsOf(forced), await outputsOf(fromCache));
  } finally {
    delete process.env.SOURCE_DATE_EPOCH;
  }

  // rpm reads a normal release: `1.<12 hex digits of the cache key>.br1`, built at the fixed package epoch.
  const probe = fresh.packages[1];
  const [rpm] = probe?.rpms ?? [];
  const record = JSON.parse(readFileSync(join(freshProject, 'build', 'rpms', 'x86_64', 'probe', '.brl-build.json'), 'utf8')) as { key: string };
  t.is(probe?.dist, `.${record.key.slice(0, 12)}.br1`);
  t.is(basename(rpm as string), `bottlerocket-probe-1.0-1${probe?.dist as string}.noarch.rpm`);
  const query = await execFileAsync('rpm', ['-qp', '--nosignature', '--qf', '%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{BUILDHOST} %{BUILDTIME} %{SOURCERPM}\n[%{FILEMTIMES} %{FILENAMES}\n]', rpm as string]);
  t.is(query.stdout, [
    `bottlerocket-probe 1.0 1${probe?.dist as string} noarch brl-build ${packageSourceDateEpoch} bottlerocket-probe-1.0-1${probe?.dist as string}.src.rpm`,
    `${packageSourceDateEpoch} /x86_64-bottlerocket-linux-gnu/sys-root/usr/share/probe`,
    `${packageSourceDateEpoch} /x86_64-bottlerocket-linux-gnu/sys-root/usr/share/probe/seen-epoch`,
    '',
  ].join('\n'));
  const payload = execFileSync('sh', ['-c', `rpm2cpio '${rpm as string}' | cpio -i --to-stdout --quiet './x86_64-bottlerocket-linux-gnu/sys-root/usr/share/probe/seen-epoch'`]).toString();
  t.is(payload, `${packageSourceDateEpoch}\n`);

  // A changed input is a new key, and so a new release.
  writeFileSync(join(freshProject, 'packages-specs', 'probe', 'probe.spec'), probeSpec().replace('Test package.', 'Test package, changed.'));
  const changed = await buildPackages(freshProject, { ...quiet, all: true });
  t.deepEqual(changed.packages.map((pkg) => pkg.status), ['cached', 'built']);
  t.not(changed.packages[1]?.dist, probe?.dist);
});
