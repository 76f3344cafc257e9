import test from 'ava';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync, openSync, readSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brl, repoDir, type CliResult } from '../helpers/cli.ts';
import { buildEnv, makeProject, minimalVariant } from '../lib/variant/project-fixture.ts';
import { serveDirectory, type RunningServer } from '../../src/lib/repo/serve.ts';
import { lz4Decompress, partitionFile, sh, type BuildManifest } from './variant-checks.ts';

// Version A (1.2.3) of test-minimal is installed on a disk image; version B (1.2.4) is published
// in a signed repository served on 127.0.0.1; the host programs in bin/ update A to B.
const project = makeProject();
project.addVariant('test-minimal', minimalVariant());
const work = mkdtempSync(join(tmpdir(), 'brl-update-e2e-'));
const hostRoot = join(work, 'host');
const disk = join(work, 'disk.img');
let server: RunningServer;
/** A variant build's manifest plus the directory holding its artifacts. */
type Build = BuildManifest & { outputDir: string };
let manifestA: Build;
let manifestB: Build;
const requests: string[] = [];

function hostProgram(program: 'updog' | 'signpost', args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(join(repoDir, 'bin', program), [...args, '--root', hostRoot, '--disk', disk], (error, stdout, stderr) => {
      resolve({ stdout, stderr, exitCode: error ? (typeof error.code === 'number' ? error.code : 1) : 0 });
    });
  });
}

async function ok(run: Promise<CliResult>): Promise<CliResult> {
  const result = await run;
  if (result.exitCode !== 0) throw new Error(`exit ${result.exitCode}: ${result.stdout}${result.stderr}`);
  return result;
}

async function buildVersion(version: string): Promise<Build> {
  writeFileSync(join(project.dir, 'Release.toml'), `version = "${version}"\n\n[migrations]\n"(1.2.3, 1.2.4)" = []\n`);
  const run = await ok(brl(['build', 'variant', 'test-minimal', '--json'], { cwd: project.dir, env: buildEnv() }));
  const { outputDir } = JSON.parse(run.stdout) as { outputDir: string };
  return { ...(JSON.parse(readFileSync(join(outputDir, 'build-manifest.json'), 'utf8')) as BuildManifest), outputDir };
}

function partitionsHash(keys: string[]): string {
  const hash = createHash('sha256');
  const fd = openSync(disk, 'r');
  const buffer = Buffer.alloc(4 * 1024 * 1024);
  try {
    for (const key of keys) {
      const partition = manifestA.disks.os.partitions.find((p) => p.key === key)!;
      const start = partition.startMiB * 1024 * 1024;
      const size = partition.sizeMiB * 1024 * 1024;
      for (let done = 0; done < size;) {
        const bytes = readSync(fd, buffer, 0, Math.min(buffer.length, size - done), start + done);
        hash.update(buffer.subarray(0, bytes));
        done += bytes;
      }
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

const setA = ['BOOT-A', 'ROOT-A', 'HASH-A'];

test.before(async () => {
  manifestA = await buildVersion('1.2.3');
  manifestB = await buildVersion('1.2.4');
  const env = { ...buildEnv(), BRL_PROJECT_DIR: project.dir };
  const roles = join(project.dir, 'roles', 'default.root.json');
  const key = join(project.dir, 'keys', 'default.pem');
  await ok(brl(['repo', 'root', 'init', roles], { cwd: project.dir, env }));
  await ok(brl(['repo', 'root', 'gen-key', roles, key, '--type', 'ed25519'], { cwd: project.dir, env }));
  for (const role of ['root', 'snapshot', 'targets', 'timestamp']) await ok(brl(['repo', 'root', 'set-threshold', roles, role, '1'], { cwd: project.dir, env }));
  await ok(brl(['repo', 'root', 'expire', roles, 'in 52 weeks'], { cwd: project.dir, env }));
  await ok(brl(['repo', 'root', 'sign', roles, '--key', key], { cwd: project.dir, env }));
  const outdir = join(work, 'repo');
  const imagesDir = manifestB.outputDir;
  await ok(brl(['repo', 'build', '--variant', 'test-minimal', '--arch', 'x86_64', '--key', key, '--root-role-path', roles,
    '--outdir', outdir, '--images-dir', imagesDir, '--wave-policy', 'accelerated'], { cwd: project.dir, env }));
  server = await serveDirectory(outdir, { onRequest: (line) => requests.push(line.path) });

  mkdirSync(join(hostRoot, 'etc'), { recursive: true });
  mkdirSync(join(hostRoot, 'usr', 'lib'), { recursive: true });
  mkdirSync(join(hostRoot, 'usr', 'share', 'updog'), { recursive: true });
  writeFileSync(join(hostRoot, 'etc', 'updog.toml'), [
    `metadata_base_url = "${server.url}test-minimal/x86_64/"`, `targets_base_url = "${server.url}targets/"`,
    'seed = 1700', 'version_lock = "latest"', 'ignore_waves = false', ''].join('\n'));
  writeFileSync(join(hostRoot, 'usr', 'lib', 'os-release'), 'NAME=Bottlerocket\nID=bottlerocket\nVARIANT_ID=test-minimal\nVERSION_ID=1.2.3\nBUILD_ID=abcdef12\n');
  copyFileSync(roles, join(hostRoot, 'usr', 'share', 'updog', 'root.json'));
  lz4Decompress(join(manifestA.outputDir, 'bottlerocket-test-minimal-x86_64-1.2.3-abcdef12.img.lz4'), disk);
});

test.after.always(async () => {
  await server?.close();
  rmSync(work, { recursive: true, force: true });
  rmSync(project.dir, { recursive: true, force: true });
});

test.serial('a host of version A sees B only after its wave, or with --now', async (t) => {
  await ok(hostProgram('signpost', ['next-boot']));
  const waiting = await hostProgram('updog', ['check-update']);
  t.is(waiting.exitCode, 1, 'seed 1700 of the accelerated policy waits about a day');
  t.regex(waiting.stderr, /No update available/);
  const now = await ok(hostProgram('updog', ['check-update', '--now', '--json']));
  const update = JSON.parse(now.stdout) as { variant: string; version: string; images: Record<string, string> };
  t.is(update.version, '1.2.4');
  t.is(update.images.root, 'bottlerocket-test-minimal-x86_64-1.2.4-abcdef12-root.ext4.lz4');
  t.true(requests.some((path) => /timestamp\.json\?seed=1700&version=1\.2\.3$/.test(path)), requests.join('\n'));
});

test.serial('updog update writes B into the inactive set; independent tools confirm it; A is untouched', async (t) => {
  const activeBefore = partitionsHash(setA);
  const run = await ok(hostProgram('updog', ['update', '--now']));
  t.regex(run.stderr, /Starting update to 1\.2\.4/);
  t.is(run.stdout, 'Update applied: test-minimal 1.2.4\n');
  t.is(partitionsHash(setA), activeBefore, 'set A byte-for-byte unchanged');
  t.true(requests.some((path) => /root\.ext4\.lz4\?migrations=manifest\.json&seed=1700&target=1\.2\.4&version=1\.2\.3$/.test(path)), 'target requests carry target and migrations');

  const rootB = partitionFile(disk, manifestA, 'ROOT-B', work, manifestB.verity.dataBlocks * 4096);
  const hashB = partitionFile(disk, manifestA, 'HASH-B', work);
  t.notThrows(() => sh('veritysetup', ['verify', rootB, hashB, manifestB.verity.rootHash]));
  t.notThrows(() => sh('fsck.ext4', ['-fn', rootB]));
  t.regex(sh('sgdisk', ['-v', disk]), /No problems found/);
  // BOOT-B (partition 8): priority 2 (bit 49), tries 1 (bit 52); BOOT-A (3): priority 1, successful.
  t.regex(sh('sgdisk', ['-i', '8', disk]), /Attribute flags: 0012000000000000/);
  t.regex(sh('sgdisk', ['-i', '3', disk]), /Attribute flags: 0101000000000000/);
});

test.serial('update-revert keeps A booting; update-apply stages B again', async (t) => {
  await ok(hostProgram('updog', ['update-revert']));
  t.regex(sh('sgdisk', ['-i', '8', disk]), /Attribute flags: 0010000000000000/);
  const status = JSON.parse((await ok(hostProgram('signpost', ['status', '--json']))).stdout) as { nextSet: string };
  t.is(status.nextSet, 'A');
  await ok(hostProgram('updog', ['update-apply']));
  t.is((JSON.parse((await ok(hostProgram('signpost', ['status', '--json']))).stdout) as { nextSet: string }).nextSet, 'B');
});

test.serial('a boot of B that never succeeds falls back to A; a good boot of B sticks and can be rolled back', async (t) => {
  const first = JSON.parse((await ok(hostProgram('signpost', ['next-boot', '--json']))).stdout) as { booted: string; triesDecremented: boolean };
  t.deepEqual([first.booted, first.triesDecremented], ['B', true]);
  // B never reached mark-successful-boot: GRUB falls back to A.
  t.is((JSON.parse((await ok(hostProgram('signpost', ['next-boot', '--json']))).stdout) as { booted: string }).booted, 'A');

  // Stage B again from A (its set was left p2 t0 s0 by the failed boot), boot it, mark it good.
  await ok(hostProgram('updog', ['update', '--now', '--image', '1.2.4']));
  t.is((JSON.parse((await ok(hostProgram('signpost', ['next-boot', '--json']))).stdout) as { booted: string }).booted, 'B');
  await ok(hostProgram('signpost', ['mark-successful-boot']));
  t.is((await ok(hostProgram('signpost', ['has-boot-ever-succeeded']))).stdout, 'true\n');
  t.is((JSON.parse((await ok(hostProgram('signpost', ['next-boot', '--json']))).stdout) as { booted: string }).booted, 'B');
  // Manual rollback to A, which still boots.
  await ok(hostProgram('signpost', ['rollback-to-inactive']));
  t.is((JSON.parse((await ok(hostProgram('signpost', ['next-boot', '--json']))).stdout) as { booted: string }).booted, 'A');
  t.regex(sh('sgdisk', ['-v', disk]), /No problems found/);
});
