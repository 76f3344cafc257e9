// Where a build finds its Secure Boot keys: [secure-boot] in brl.toml, BRL_SECURE_BOOT_KEYS, and a clear error when neither names them.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { secureBootKeyLocations } from '../../../src/lib/secure-boot/settings.ts';

const scratch = mkdtempSync(join(tmpdir(), 'brl-sb-settings-'));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

function project(toml: string | undefined): string {
  const dir = mkdtempSync(join(scratch, 'project-'));
  if (toml !== undefined) writeFileSync(join(dir, 'brl.toml'), toml);
  return dir;
}

test('keys-dir and file key sources are taken relative to the project, KMS sources as they are', async (t) => {
  const dir = project('[secure-boot]\nkeys-dir = "keys/sb"\ncode-signing-key = "keys/other.key"\ngrub-key = "aws-kms:///alias/brl-grub"\n');
  t.deepEqual(await secureBootKeyLocations(dir, {}), {
    dir: join(dir, 'keys/sb'),
    codeSigningKey: { kind: 'file', path: join(dir, 'keys/other.key') },
    grubKey: { kind: 'kms', keyId: 'alias/brl-grub' },
  });
});

test('BRL_SECURE_BOOT_KEYS replaces keys-dir for one build', async (t) => {
  const dir = project('[secure-boot]\nkeys-dir = "keys/sb"\n');
  t.is((await secureBootKeyLocations(dir, { BRL_SECURE_BOOT_KEYS: '/elsewhere/keys' })).dir, '/elsewhere/keys');
});

test('no keys configured is an error whose hint names brl keys secure-boot init and brl.toml', async (t) => {
  const error = await t.throwsAsync(secureBootKeyLocations(project(undefined), {}));
  t.is((error as { code?: string }).code, 'NO_SECURE_BOOT_KEYS');
  t.regex((error as { hint?: string }).hint ?? '', /brl keys secure-boot init .*\[secure-boot\] in brl\.toml/);
});

test('a misspelled key or a bad key source names the brl.toml key', async (t) => {
  const misspelled = await t.throwsAsync(secureBootKeyLocations(project('[secure-boot]\nkey-dir = "keys"\n'), {}));
  t.regex(misspelled!.message, /secure-boot\.key-dir/);
  const badSource = await t.throwsAsync(secureBootKeyLocations(project('[secure-boot]\nkeys-dir = "k"\ngrub-key = "gcp-kms:///x"\n'), {}));
  t.regex(badSource!.message, /secure-boot\.grub-key/);
});
