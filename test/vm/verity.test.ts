// A tampered root never runs: one flipped byte in ROOT-A and the kernel restarts before any program
// from the root starts (TCG, UEFI through GRUB and verity-init).
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brl } from '../helpers/cli.ts';
import { devBuilder, tamperedOsDisk } from '../helpers/dev-image.ts';

const buildDev = devBuilder('vm-verity');

/** Boots `image` until `seconds` pass (or QEMU ends) and returns the serial console. */
async function bootFor(image: string, seconds: number, dir: string, name: string): Promise<string> {
  const consoleLog = join(dir, `${name}.log`);
  const result = await brl(['vm', 'run', '--image', image, '--accel', 'tcg', '--state-dir', join(dir, name), '--console-log', consoleLog, '--timeout', String(seconds), '--json']);
  if (result.exitCode !== 0) throw new Error(`brl vm run failed: ${result.stdout}${result.stderr}`);
  return readFileSync(consoleLog, 'latin1');
}

test('one flipped byte in ROOT-A: dm-verity stops the boot before any program from the root runs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-vm-verity-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const raw = await tamperedOsDisk(await buildDev(), dir);

  const tampered = await bootFor(raw, 90, dir, 'tampered');
  t.regex(tampered, /verity: .*data block 0 is corrupted/);
  t.regex(tampered, /dm-verity device corrupted/);
  t.notRegex(tampered, /verified root mounted/);
  t.notRegex(tampered, /systemd\[1\]/);
});
