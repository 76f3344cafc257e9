import test from 'ava';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { canonicalize } from '@tufjs/canonical-json';
import { brl } from '../helpers/cli.ts';

test('root init writes tuftool\'s placeholder root; add/remove keys; editing a signed root starts the next version', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-root-cli-'));
  const root = join(dir, 'root.json');
  const run = async (args: string[]) => {
    const result = await brl(['repo', 'root', ...args], { cwd: dir });
    t.is(result.exitCode, 0, result.stderr);
    return result.stdout;
  };
  await run(['init', root]);
  const fresh = JSON.parse(readFileSync(root, 'utf8'));
  t.is(fresh.signed.version, 1);
  t.true(fresh.signed.consistent_snapshot);
  t.deepEqual(Object.values(fresh.signed.roles).map((role) => (role as { threshold: number }).threshold), [1507, 1507, 1507, 1507]);
  t.regex(fresh.signed.expires, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

  const generated = JSON.parse(await run(['gen-key', root, 'keys/a.pem', '--type', 'ed25519', '--role', 'root', '--json']));
  t.false(readFileSync(join(dir, 'keys', 'a.pem'), 'utf8').length === 0);
  t.notRegex(JSON.stringify(generated), /PRIVATE KEY/);
  const added = JSON.parse(await run(['add-key', root, 'keys/a.pem', '--role', 'targets', '--json']));
  t.is(added.keyId, generated.keyId);
  const saved = JSON.parse(readFileSync(root, 'utf8'));
  // The key ID is the sha256 of the key's canonical JSON, computed here with tuf-js's canonicalizer.
  t.is(createHash('sha256').update(canonicalize(saved.signed.keys[generated.keyId])).digest('hex'), generated.keyId);
  t.deepEqual(saved.signed.roles.targets.keyids, [generated.keyId]);

  await run(['set-threshold', root, 'root', '1']);
  const signed = JSON.parse(await run(['sign', root, '--key', 'keys/a.pem', '--json']));
  t.true(signed.complete);
  const edit = JSON.parse(await run(['remove-key', root, generated.keyId.slice(0, 12), '--role', 'targets', '--json']));
  t.is(edit.version, 2);
  t.is(edit.archivedVersion, 1);
  t.true(existsSync(join(dir, '1.root.json')));
  t.deepEqual(JSON.parse(readFileSync(root, 'utf8')).signatures, []);

  const unknown = await brl(['repo', 'root', 'remove-key', root, 'ffff'], { cwd: dir });
  t.is(unknown.exitCode, 4);
  t.regex(unknown.stderr, /root has no key ffff/);
});
