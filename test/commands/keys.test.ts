// brl keys secure-boot init as a user runs it: the key set, its --json summary, and a refusal to overwrite.
import test from 'ava';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brl } from '../helpers/cli.ts';

const scratch = mkdtempSync(join(tmpdir(), 'brl-keys-cli-'));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

test('keys secure-boot init writes the key set and summarizes it; a second run on the same directory is a conflict', async (t) => {
  const dir = join(scratch, 'secure-boot');
  const first = await brl(['keys', 'secure-boot', 'init', dir, '--organization', 'Example Corp', '--valid-days', '30', '--json']);
  t.is(first.exitCode, 0, first.stderr);
  const summary = JSON.parse(first.stdout) as { certificates: Array<{ file: string; subject: string }>; grubKey: { fingerprint: string }; privateKeys: string[] };
  t.deepEqual(summary.certificates.map((certificate) => certificate.file), ['PK.crt', 'KEK.crt', 'db.crt', 'code-sign.crt']);
  t.regex(summary.certificates[0]!.subject, /O=Example Corp/);
  t.regex(summary.grubKey.fingerprint, /^[0-9A-F]{40}$/);
  for (const file of summary.privateKeys) t.is(statSync(join(dir, file)).mode & 0o777, 0o600);
  t.is(readdirSync(dir).length, 10);
  const again = await brl(['keys', 'secure-boot', 'init', dir, '--json']);
  t.is(again.exitCode, 9);
  t.is((JSON.parse(again.stdout) as { error: { code: string } }).error.code, 'KEYS_EXIST');
});
