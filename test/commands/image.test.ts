import test from 'ava';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brl } from '../helpers/cli.ts';
import { buildTestDisk, compressTestDisk } from '../lib/image/disk-fixture.ts';
import { ExitCode } from '../../src/lib/core/errors.ts';

function workDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'brl-image-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('brl image inspect --json on a .img.lz4 lists BOOT-A\'s gptprio flags and the root hash', async (t) => {
  const disk = await buildTestDisk(workDir(t));
  const { stdout, exitCode } = await brl(['image', 'inspect', await compressTestDisk(disk), '--json']);
  t.is(exitCode, 0);
  const result = JSON.parse(stdout) as { format: string; partitions: { role: string; gptprio?: unknown }[]; grub: { rootHash: string }[] };
  t.is(result.format, 'lz4');
  t.deepEqual(result.partitions.find((p) => p.role === 'BOOT-A')?.gptprio, { priority: 1, triesLeft: 0, successful: true });
  t.is(result.grub[0]?.rootHash, disk.rootHash);
});

test('brl image verify exits 0 on an intact image and 6 naming the data block of a flipped ROOT-A byte', async (t) => {
  const disk = await buildTestDisk(workDir(t));
  const good = await brl(['image', 'verify', disk.path]);
  t.is(good.exitCode, 0, good.stderr);
  t.regex(good.stdout, /ok {3}verity-tree/);
  const fd = openSync(disk.path, 'r+');
  writeSync(fd, Buffer.from([0x5a]), 0, 1, disk.rootOffset + 42 * 4096 + 1);
  closeSync(fd);
  const bad = await brl(['image', 'verify', disk.path]);
  t.is(bad.exitCode, ExitCode.verifyFailed);
  t.regex(bad.stdout, /FAIL verity-tree +ROOT-A data block 42 /);
  t.regex(bad.stderr.replace(/\s*›\s*/g, ' '), /failed verification: verity-tree: ROOT-A data block 42 /);
  const json = await brl(['image', 'verify', disk.path, '--json']);
  t.is(json.exitCode, ExitCode.verifyFailed);
  t.is((JSON.parse(json.stdout) as { error: { code: string } }).error.code, 'IMAGE_VERIFY_FAILED');
});
