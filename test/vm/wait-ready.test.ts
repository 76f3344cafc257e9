// --wait-ready on a guest whose API never answers: brl gives up with the console's last lines and
// stops the detached VM, instead of hanging.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brl } from '../helpers/cli.ts';
import { devBuilder, tamperedOsDisk } from '../helpers/dev-image.ts';

const buildDev = devBuilder('vm-wait-ready');

test('a guest that never reaches API ready fails --wait-ready with its last console lines, and nothing keeps running', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-vm-wait-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const state = join(dir, 'state');
  // A tampered root: dm-verity restarts the guest at every boot, so its API never answers.
  const image = await tamperedOsDisk(await buildDev(), dir);
  const result = await brl(['vm', 'run', '--image', image, '--accel', 'tcg', '--state-dir', state, '--wait-ready', '--timeout', '60', '--json']);
  t.is(result.exitCode, 1, result.stdout);
  const { error } = JSON.parse(result.stdout) as { error: { code: string; message: string; hint: string } };
  t.is(error.code, 'VM_NOT_READY');
  t.regex(error.message, /did not reach API ready within 60 s before its API answered; last console lines:\n/);
  // The lines quoted are the end of the console log the hint names.
  const quoted = error.message.split('last console lines:\n')[1] ?? '';
  t.true(quoted.trim().length > 0);
  const consoleText = readFileSync(join(state, 'console.log'), 'latin1').replace(/\r/g, '').trimEnd();
  t.true(consoleText.endsWith(quoted.trimEnd()) || consoleText.includes(quoted.split('\n')[0] ?? '\u0000'), quoted);
  t.regex(error.hint, /console\.log/);
  await new Promise((resolve) => setTimeout(resolve, 6000));
  t.false(existsSync(join(state, 'supervisor.pid')), 'the supervisor stopped');
  const qemus = execFileSync('ps', ['-eo', 'args']).toString().split('\n').filter((line) => line.startsWith('qemu-system') && line.includes(state));
  t.deepEqual(qemus, []);
});
