// A tampered root never runs. Through GRUB (UEFI): one flipped byte in ROOT-A and the kernel restarts
// before any program from the root starts. Without GRUB (QEMU's -kernel/-initrd): BOOT-A's kernel and
// initrd.img with BOOT-A's table start a program from the verified root, and neither from a flipped
// one nor with a table that asks for a writable device.
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brl } from '../helpers/cli.ts';
import { devBuilder, osDiskOf, tamperedOsDisk } from '../helpers/dev-image.ts';
import { buildManifestName, type BuildManifest } from '../../src/lib/variant/build-manifest.ts';
import type { VariantBuildResult } from '../../src/lib/variant/build.ts';

const buildDev = devBuilder('vm-verity');
let built: Promise<VariantBuildResult> | undefined;
const devImage = (): Promise<VariantBuildResult> => (built ??= buildDev());

/** What the dev image's hello prints: a program from the root ran. */
const MARKER = 'Hello, world!';

function scratch(t: ExecutionContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Boots `image` until `seconds` pass (or QEMU ends) and returns the serial console. */
async function bootFor(image: string, seconds: number, dir: string, name: string): Promise<string> {
  const consoleLog = join(dir, `${name}.log`);
  const result = await brl(['vm', 'run', '--image', image, '--accel', 'tcg', '--state-dir', join(dir, name), '--console-log', consoleLog, '--timeout', String(seconds), '--json']);
  if (result.exitCode !== 0) throw new Error(`brl vm run failed: ${result.stdout}${result.stderr}`);
  return readFileSync(consoleLog, 'latin1');
}

interface DirectBoot {
  kernel: string;
  initrd: string;
  /** BOOT-A's dm-mod.create table with $boot_uuid as GRUB expands it. */
  table: string;
}

/** BOOT-A's kernel, initramfs and verity table, taken out of the build's BOOT image with debugfs. */
function directBootParts(result: VariantBuildResult, dir: string): DirectBoot {
  const manifest = JSON.parse(readFileSync(join(result.outputDir, buildManifestName), 'utf8')) as BuildManifest;
  const bootImage = result.artifacts.find((artifact) => artifact.kind === 'boot-image');
  const bootA = manifest.disks.os.partitions.find((partition) => partition.key === 'BOOT-A');
  if (bootImage === undefined || bootA === undefined) throw new Error('the build has no BOOT image or BOOT-A partition');
  const boot = join(dir, 'boot.ext4');
  execFileSync('lz4', ['-dqf', join(result.outputDir, bootImage.file), boot]);
  const kernel = join(dir, 'vmlinuz');
  const initrd = join(dir, 'initrd.img');
  for (const [from, to] of [['/vmlinuz', kernel], ['/initrd.img', initrd]]) execFileSync('debugfs', ['-R', `dump ${from} ${to}`, boot], { stdio: 'ignore' });
  const grubConfig = execFileSync('debugfs', ['-R', 'cat /grub/grub.cfg', boot], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  const table = /^set dm_verity_root="([^"]+)"$/m.exec(grubConfig)?.[1];
  if (table === undefined) throw new Error(`BOOT-A's grub.cfg sets no dm_verity_root:\n${grubConfig}`);
  return { kernel, initrd, table: table.replaceAll('$boot_uuid', bootA.uniqueGuid) };
}

interface Console {
  text: string;
  /** Milliseconds from QEMU's start to the marker's line, if it came. */
  markerMs: number | undefined;
}

/**
 * QEMU (TCG) boots the kernel and initramfs straight into `init=/usr/bin/hello` on a qcow2 overlay of
 * `disk`; hello exits, the kernel panics and panic=-1 with -no-reboot ends QEMU. Killed on teardown
 * and after `seconds`.
 */
async function directBoot(t: ExecutionContext, parts: DirectBoot, disk: string, dir: string, name: string, seconds: number): Promise<Console> {
  const overlay = join(dir, `${name}.qcow2`);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', disk, overlay]);
  const append = `console=ttyS0 panic=-1 dm-mod.create="${parts.table}" init=/usr/bin/hello`;
  const started = performance.now();
  const qemu = spawn('qemu-system-x86_64', ['-accel', 'tcg', '-m', '1024', '-nographic', '-nic', 'none', '-no-reboot', '-kernel', parts.kernel, '-initrd', parts.initrd, '-append', append, '-drive', `file=${overlay},if=virtio`], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (qemu.exitCode === null && qemu.signalCode === null) qemu.kill('SIGKILL');
  });
  let text = '';
  let markerMs: number | undefined;
  const collect = (chunk: Buffer): void => {
    text += chunk.toString('latin1');
    if (markerMs === undefined && text.includes(MARKER)) markerMs = performance.now() - started;
  };
  qemu.stdout.on('data', collect);
  qemu.stderr.on('data', collect);
  const timer = setTimeout(() => qemu.kill('SIGKILL'), seconds * 1000);
  await new Promise<void>((resolve) => qemu.on('close', () => resolve()));
  clearTimeout(timer);
  return { text, markerMs };
}

test('one flipped byte in ROOT-A: dm-verity stops the boot before any program from the root runs', async (t) => {
  const dir = scratch(t, 'brl-vm-verity-');
  const raw = await tamperedOsDisk(await devImage(), dir);

  const tampered = await bootFor(raw, 90, dir, 'tampered');
  t.regex(tampered, /verity: .*data block 0 is corrupted/);
  t.regex(tampered, /dm-verity device corrupted/);
  t.notRegex(tampered, /verified root mounted/);
  t.notRegex(tampered, /systemd\[1\]/);
});

test('kernel and initrd.img without GRUB: verity-init starts init= from the verified root; a flipped byte or a writable table reboots before it', async (t) => {
  const dir = scratch(t, 'brl-vm-verity-initramfs-');
  const result = await devImage();
  const parts = directBootParts(result, dir);
  const disk = join(dir, 'disk.img');
  execFileSync('lz4', ['-dqf', osDiskOf(result), disk]);

  const sound = await directBoot(t, parts, disk, dir, 'sound', 120);
  t.regex(sound.text, /verity-init: root: verity device 253:0/, sound.text);
  t.regex(sound.text, /verity-init: verified root mounted read-only \(ext4\)/);
  t.true(sound.markerMs !== undefined, `no "${MARKER}" on the console:\n${sound.text}`);
  t.log(`QEMU start to ${MARKER} (TCG): ${Math.round(sound.markerMs ?? 0)} ms`);

  const tamperedDir = join(dir, 'tampered');
  mkdirSync(tamperedDir);
  const tampered = await directBoot(t, parts, await tamperedOsDisk(result, tamperedDir), dir, 'tampered', 120);
  t.is(tampered.markerMs, undefined, tampered.text);
  t.regex(tampered.text, /verity: .*data block 0 is corrupted/);
  t.notRegex(tampered.text, /verified root mounted/);

  const writable = await directBoot(t, { ...parts, table: parts.table.replace(',,,ro,', ',,,rw,') }, disk, dir, 'writable', 120);
  t.is(writable.markerMs, undefined, writable.text);
  t.regex(writable.text, /verity-init: the root device must be read-only \(flags 'rw'\)/);
  t.regex(writable.text, /verity-init: refusing to boot this bank; rebooting/);
  t.notRegex(writable.text, /verity device 253:0/);
});
