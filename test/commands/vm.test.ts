import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brl, repoDir, type CliResult } from '../helpers/cli.ts';
import { claimSocketPath } from '../../src/lib/vm/run.ts';
import { firmwareFiles } from '../../src/lib/vm/firmware.ts';
import { BrlError } from '../../src/lib/core/errors.ts';

const BOOT_TYPE = '6b636168-7420-6568-2070-6c616e657421';

function scratch(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'brl-vm-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An 8 MiB GPT disk (made by sgdisk) whose BOOT partition holds an ext4 with the given /vmlinuz. */
function tinyDisk(dir: string, kernel: Buffer): string {
  const disk = join(dir, 'disk.img');
  const tree = join(dir, 'boot-tree');
  mkdirSync(tree);
  writeFileSync(join(tree, 'vmlinuz'), kernel);
  execFileSync('truncate', ['-s', '8M', disk]);
  execFileSync('sgdisk', ['-n', '1:2048:+4M', '-t', `1:${BOOT_TYPE}`, '-c', '1:BOTTLEROCKET-BOOT-A', disk], { stdio: 'ignore' });
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', tree, join(dir, 'boot.fs'), '4M']);
  execFileSync('dd', [`if=${join(dir, 'boot.fs')}`, `of=${disk}`, 'bs=1M', 'seek=1', 'conv=notrunc', 'status=none']);
  return disk;
}

function x86Kernel(): Buffer {
  const kernel = Buffer.alloc(4096);
  kernel.write('HdrS', 0x202, 'latin1');
  return kernel;
}

/** Runs `brl vm run … --json` and checks the one error envelope it prints. */
async function assertUserError(t: import('ava').ExecutionContext, args: string[], exitCode: number, message: RegExp): Promise<void> {
  const result: CliResult = await brl(['vm', 'run', ...args, '--json']);
  t.is(result.exitCode, exitCode, result.stdout + result.stderr);
  const { error } = JSON.parse(result.stdout) as { error: { message: string; exitCode: number; stack?: string } };
  t.regex(error.message, message);
  t.is(error.stack, undefined, 'a user error, not a bug');
}

test('a missing image, a directory and a file that is not a GPT disk are named, one line each', async (t) => {
  const dir = scratch(t);
  await assertUserError(t, ['--image', join(dir, 'nope.img')], 4, /nope\.img/);
  await assertUserError(t, ['--image', dir], 3, /is a directory, not a disk image/);
  writeFileSync(join(dir, 'random.img'), Buffer.alloc(1024 * 1024, 0x5a));
  await assertUserError(t, ['--image', join(dir, 'random.img'), '--state-dir', join(dir, 'state')], 3, /random\.img is not a GPT disk image/);
});

test('a truncated raw disk and a truncated .img.lz4 are refused before QEMU starts', async (t) => {
  const dir = scratch(t);
  const disk = tinyDisk(dir, x86Kernel());
  const cut = join(dir, 'cut.img');
  writeFileSync(cut, readFileSync(disk).subarray(0, 3 * 1024 * 1024));
  await assertUserError(t, ['--image', cut, '--state-dir', join(dir, 'state1')], 3, /cut\.img is truncated: its partitions end at byte 5242880 but the disk holds 3145728 bytes/);
  execFileSync('lz4', ['-q', '-9', disk, join(dir, 'disk.img.lz4')]);
  const lz4 = readFileSync(join(dir, 'disk.img.lz4'));
  writeFileSync(join(dir, 'cut.img.lz4'), lz4.subarray(0, lz4.length - 100));
  await assertUserError(t, ['--image', join(dir, 'cut.img.lz4'), '--state-dir', join(dir, 'state2')], 3, /cut\.img\.lz4 cannot be decoded/);
});

test('an image whose kernel is for another architecture is refused, naming both', async (t) => {
  const dir = scratch(t);
  const arm = Buffer.alloc(4096);
  arm.write('ARM\x64', 0x38, 'latin1');
  await assertUserError(t, ['--image', tinyDisk(dir, arm), '--state-dir', join(dir, 'state')], 3, /holds an aarch64 kernel, not x86_64/);
});

test('an image whose kernel is of no kind brl knows is refused unless --arch says what it is', async (t) => {
  const dir = scratch(t);
  const disk = tinyDisk(dir, Buffer.alloc(4096, 0x5a));
  // (--timeout: were it not refused, QEMU would start and stop again, and the test fail, not hang.)
  await assertUserError(t, ['--image', disk, '--state-dir', join(dir, 'state'), '--accel', 'tcg', '--timeout', '5'], 3, /cannot tell the arch of .*disk\.img: \/vmlinuz on its BOOT-A is not an x86 bzImage, an arm64 Image/);
  // Told the arch, brl gets past the check: the next refusal is --wait-ready's, which comes after it.
  await assertUserError(t, ['--image', disk, '--arch', 'x86_64', '--state-dir', join(dir, 'state'), '--wait-ready'], 3, /has no API bridge/);
});

test('--wait-ready on an image without the API bridge says why it cannot wait', async (t) => {
  const dir = scratch(t);
  await assertUserError(t, ['--image', tinyDisk(dir, x86Kernel()), '--state-dir', join(dir, 'state'), '--wait-ready'], 3, /has no API bridge/);
  t.false(existsSync(join(dir, 'state', 'api.sock')), 'an image without the feature exposes no socket');
});

test('a socket path that a live server holds is busy; a stale one is taken over', async (t) => {
  const dir = scratch(t);
  const path = join(dir, 'api.sock');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const busy = await t.throwsAsync(claimSocketPath(path), { instanceOf: BrlError });
  t.is(busy?.code, 'SOCKET_BUSY');
  t.regex(busy?.message ?? '', /api\.sock is busy/);
  // A server that died without removing its socket leaves a file nothing answers on.
  server.unref();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  writeFileSync(path, '');
  await claimSocketPath(path);
  t.false(existsSync(path));
});

test('missing firmware names the file and the Debian package', (t) => {
  const error = t.throws(() => firmwareFiles('uefi', { ovmf: '/nonexistent/OVMF' }), { instanceOf: BrlError });
  t.regex(error?.message ?? '', /\/nonexistent\/OVMF\/OVMF_CODE_4M\.fd is missing/);
  t.regex(error?.hint ?? '', /apt-get install ovmf/);
});

test('UEFI firmware boots an image on an overlay that leaves the image unchanged, and --timeout leaves nothing running (TCG)', async (t) => {
  const dir = scratch(t);
  const disk = tinyDisk(dir, x86Kernel());
  const before = createHash('sha256').update(readFileSync(disk)).digest('hex');
  const state = join(dir, 'state');
  const consoleLog = join(dir, 'console.log');
  // OVMF under TCG has printed its boot manager within 5 s on an idle machine, but not within 20 s
  // while CI's other tests and VMs held both cores.
  const result = await brl(['vm', 'run', '--image', disk, '--state-dir', state, '--console-log', consoleLog, '--timeout', '45', '--accel', 'tcg', '--json']);
  t.is(result.exitCode, 0, result.stderr);
  const run = JSON.parse(result.stdout) as { accel: string; timedOut: boolean; osDisk: string; pid: number };
  t.is(run.accel, 'tcg');
  t.true(run.timedOut);
  // OVMF's boot manager writes to the serial console: the firmware ran and looked at our disk.
  t.regex(readFileSync(consoleLog, 'latin1'), /BdsDxe/);
  t.is(createHash('sha256').update(readFileSync(disk)).digest('hex'), before, 'the image itself was not written');
  t.true(existsSync(run.osDisk));
  t.deepEqual(readdirSync(state).filter((name) => name.endsWith('.sock') || name.endsWith('.pid')), []);
  const qemus = execFileSync('ps', ['-eo', 'args']).toString().split('\n').filter((line) => line.startsWith('qemu-system') && line.includes(state));
  t.deepEqual(qemus, [], 'no QEMU left running');
});

test('SIGTERM to a foreground brl vm run stops QEMU and removes its sockets and pid file', async (t) => {
  const dir = scratch(t);
  const disk = tinyDisk(dir, x86Kernel());
  const state = join(dir, 'state');
  const child = spawn(join(repoDir, 'bin', 'brl'), ['vm', 'run', '--image', disk, '--state-dir', state, '--console-log', join(dir, 'console.log'), '--accel', 'tcg', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  // Wait until QEMU is up (the supervisor writes its pid file first, the firmware then writes the console).
  for (let i = 0; i < 200 && !existsSync(join(dir, 'console.log')); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => child.on('exit', (exitCode) => resolve(exitCode)));
  t.is(code, 0);
  const result = JSON.parse(stdout) as { timedOut: boolean; exitCode: number };
  t.false(result.timedOut);
  t.deepEqual(readdirSync(state).filter((name) => name.endsWith('.sock') || name.endsWith('.pid')), []);
  const qemus = execFileSync('ps', ['-eo', 'args']).toString().split('\n').filter((line) => line.startsWith('qemu-system') && line.includes(state));
  t.deepEqual(qemus, [], 'no QEMU left running');
});
