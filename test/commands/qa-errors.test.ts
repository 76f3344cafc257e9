// A new user's mistakes end in a clear message naming what is wrong, a non-zero exit and no stack trace.
import test from 'ava';
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brl, repoDir, type CliResult } from '../helpers/cli.ts';
import { generateKeyFile } from '../../src/lib/signing/key-file.ts';
import { makeRoot } from '../lib/repo/helpers.ts';

/** Runs one of the host programs (bin/updog, bin/signpost, bin/apiclient, bin/apiserver). */
function hostProgram(name: string, args: string[], options: { cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(join(repoDir, 'bin', name), args, { cwd: options.cwd ?? repoDir, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ stdout, stderr, exitCode: error ? (typeof error.code === 'number' ? error.code : 1) : 0 });
    });
  });
}

function scratch(): string {
  return mkdtempSync(join(tmpdir(), 'brl-qa-'));
}

/** oclif wraps messages to the terminal width; join them back into one line. */
const oneLine = (text: string) => text.replace(/\s*\n\s*›\s*/g, ' ');

const stackLine = /^\s+at .+(:\d+:\d+\)?|\(native\))$/m;

function assertUserError(t: import('ava').ExecutionContext, result: CliResult, exitCode: number, message: RegExp, options: { errnoAllowed?: boolean } = {}): void {
  t.is(result.exitCode, exitCode, `${result.stderr}${result.stdout}`);
  t.regex(oneLine(result.stderr), message);
  t.notRegex(result.stderr, stackLine, 'no stack trace');
  t.notRegex(result.stderr, /\b(RangeError|TypeError)\b/, 'no JS error name');
  if (!options.errnoAllowed) t.notRegex(result.stderr, /\b(ENOENT|EISDIR|ENOTDIR|EEXIST|EACCES)\b/, 'no raw errno');
}

function assertJsonError(t: import('ava').ExecutionContext, result: CliResult, exitCode: number, code: string): { message: string; hint?: string } {
  t.is(result.exitCode, exitCode, result.stdout);
  const parsed = JSON.parse(result.stdout) as { error: { code: string; message: string; hint?: string; exitCode: number } };
  t.is(parsed.error.code, code);
  t.is(parsed.error.exitCode, exitCode);
  return parsed.error;
}

test('a missing argument under --json prints a small error envelope with code USAGE, not oclif\'s parser state', async (t) => {
  const result = await brl(['repo', 'root', 'init', '--json']);
  const error = assertJsonError(t, result, 2, 'USAGE');
  t.regex(error.message, /Missing 1 required arg/);
  t.true(result.stdout.length < 1000, `envelope is ${result.stdout.length} bytes`);
  t.notRegex(result.stdout, /pjson|"config"/);
});

test('an unknown flag and a wrong enum value are usage errors (exit 2) in text and JSON', async (t) => {
  assertUserError(t, await brl(['image', 'verify', 'disk.img', '--bank', 'C']), 2, /Expected --bank=C to be one of: A, B/);
  assertJsonError(t, await brl(['repo', 'root', 'init', 'root.json', '--bogus', '--json']), 2, 'USAGE');
});

test('an argument below its minimum is a usage error with exit 2, not exit 1', async (t) => {
  const result = await brl(['repo', 'root', 'set-threshold', 'root.json', 'root', '0']);
  assertUserError(t, result, 2, /Expected an integer greater than or equal to 1 but received: 0/);
  const json = await brl(['repo', 'root', 'set-threshold', 'root.json', 'root', 'abc', '--json']);
  assertJsonError(t, json, 2, 'USAGE');
});

test('a directory where a JSON file is expected names the path (manifest, amis.json)', async (t) => {
  const dir = scratch();
  mkdirSync(join(dir, 'manifest.json'));
  assertUserError(t, await brl(['repo', 'manifest', 'validate', 'manifest.json'], { cwd: dir }), 3, /manifest\.json is a directory, not a file/);
  const json = await brl(['repo', 'manifest', 'validate', 'manifest.json', '--json'], { cwd: dir });
  assertJsonError(t, json, 3, 'IS_A_DIRECTORY');
  assertUserError(t, await brl(['ami', 'grant', '--ami-input', 'manifest.json', '--group-names', 'all'], { cwd: dir }), 3, /manifest\.json is a directory/);
});

test('an amis.json without AMIs is refused instead of reporting zero changes as success', async (t) => {
  const dir = scratch();
  writeFileSync(join(dir, 'amis.json'), '{}\n');
  assertUserError(t, await brl(['ami', 'grant', '--ami-input', 'amis.json', '--group-names', 'all'], { cwd: dir }), 3, /amis\.json: top level: lists no AMIs/);
});

test('image inspect and verify on a small non-image file say it has no GPT (no RangeError)', async (t) => {
  const dir = scratch();
  writeFileSync(join(dir, 'notes.txt'), 'not a disk\n');
  assertUserError(t, await brl(['image', 'inspect', 'notes.txt'], { cwd: dir }), 6, /notes\.txt has no valid GPT/);
  assertUserError(t, await brl(['image', 'verify', 'notes.txt'], { cwd: dir }), 6, /notes\.txt has no valid GPT/);
  assertUserError(t, await brl(['image', 'inspect', '.'], { cwd: dir }), 3, /\. is a directory, not a disk image/);
});

test('signpost with a disk that does not exist names it, through brl and the host program', async (t) => {
  const dir = scratch();
  assertUserError(t, await brl(['signpost', 'status', '--disk', 'missing.img', '--root', dir], { cwd: dir }), 4, /disk missing\.img does not exist/);
  const host = await hostProgram('signpost', ['status', '--disk', 'missing.img', '--root', dir], { cwd: dir });
  assertUserError(t, host, 1, /signpost: disk missing\.img does not exist/);
  const directory = await hostProgram('signpost', ['status', '--disk', dir, '--root', dir]);
  assertUserError(t, directory, 1, /is a directory, not a disk image or block device/);
});

test('signpost on a disk without a GPT explains itself and exits 1', async (t) => {
  const dir = scratch();
  writeFileSync(join(dir, 'blank.img'), Buffer.alloc(1024 * 1024));
  assertUserError(t, await hostProgram('signpost', ['status', '--disk', 'blank.img', '--root', dir], { cwd: dir }), 1, /blank\.img has no valid GPT/);
});

test('updog update-apply with a missing disk names it (no stack trace)', async (t) => {
  const dir = scratch();
  mkdirSync(join(dir, 'etc'));
  writeFileSync(join(dir, 'etc', 'updog.toml'), 'metadata_base_url = "http://127.0.0.1:1/m/"\ntargets_base_url = "http://127.0.0.1:1/t/"\nseed = 1\n');
  const result = await hostProgram('updog', ['update-apply', '--root', dir, '--disk', join(dir, 'missing.img')]);
  assertUserError(t, result, 1, /missing\.img does not exist/);
});

test('updog with an unsigned trusted root names the file, and does not keep the bad root for the next run', async (t) => {
  const root = scratch();
  mkdirSync(join(root, 'etc'));
  mkdirSync(join(root, 'usr', 'lib'), { recursive: true });
  mkdirSync(join(root, 'usr', 'share', 'updog'), { recursive: true });
  writeFileSync(join(root, 'etc', 'updog.toml'), 'metadata_base_url = "http://127.0.0.1:1/m/"\ntargets_base_url = "http://127.0.0.1:1/t/"\nseed = 1\n');
  writeFileSync(join(root, 'usr', 'lib', 'os-release'), 'VARIANT_ID=dev\nVERSION_ID=1.0.0\n');
  const keys = scratch();
  const rootPath = await makeRoot(keys, await generateKeyFile(join(keys, 'keys', 'default.pem'), 'ed25519'));
  const unsigned = JSON.parse(readFileSync(rootPath, 'utf8')) as { signatures: unknown[] };
  unsigned.signatures = [];
  const trusted = join(root, 'usr', 'share', 'updog', 'root.json');
  writeFileSync(trusted, JSON.stringify(unsigned));
  const first = await hostProgram('updog', ['check-update', '--root', root]);
  assertUserError(t, first, 1, new RegExp(`updog: trusted TUF root ${trusted.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not valid: root was signed by 0/1 keys`));
  writeFileSync(trusted, '{');
  const second = await brl(['updog', 'check-update', '--root', root, '--json']);
  const error = assertJsonError(t, second, 6, 'BAD_TRUSTED_ROOT');
  t.regex(error.message, /usr\/share\/updog\/root\.json is not valid/, 'the fixed-path root is read again, not a cached copy');
});

test('updog refuses a malformed --image before contacting the repository', async (t) => {
  const root = scratch();
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc', 'updog.toml'), 'metadata_base_url = "http://127.0.0.1:1/m/"\ntargets_base_url = "http://127.0.0.1:1/t/"\nseed = 1\n');
  const result = await hostProgram('updog', ['update', '--image', 'v1.0.0', '--root', root]);
  assertUserError(t, result, 1, /updog: --image: "v1\.0\.0" is not a semantic version/);
  t.notRegex(result.stderr, /download|ECONNREFUSED/);
});

test('host programs reject unknown flags with usage and the spec\'s exit codes', async (t) => {
  const updog = await hostProgram('updog', ['--bogus']);
  t.is(updog.exitCode, 1);
  t.regex(updog.stderr, /Usage: updog/);
  const signpost = await hostProgram('signpost', ['--bogus']);
  t.is(signpost.exitCode, 1);
  t.regex(signpost.stderr, /Usage: signpost/);
  const apiserver = await hostProgram('apiserver', ['--bogus']);
  t.is(apiserver.exitCode, 2);
  t.regex(apiserver.stderr, /Usage: apiserver/);
  const apiclient = await hostProgram('apiclient', ['--bogus']);
  t.is(apiclient.exitCode, 2);
  t.regex(apiclient.stderr, /Usage: apiclient/);
});

test('apiclient without a running apiserver names the socket path and exits 1', async (t) => {
  const socket = join(scratch(), 'api.sock');
  const result = await hostProgram('apiclient', ['get', '--socket-path', socket]);
  assertUserError(t, result, 1, new RegExp(`Failed to connect to the API socket ${socket.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*is apiserver running`), { errnoAllowed: true });
});

test('apiserver with a socket path under a file names it and exits 1 (bin/apiserver) or 3 (brl apiserver)', async (t) => {
  const root = join(scratch(), 'root');
  t.is((await brl(['host', 'init', '--root', root])).exitCode, 0);
  await brl(['host', 'boot', '--root', root, '--exit']);
  writeFileSync(join(root, 'afile'), '');
  const socket = join(root, 'afile', 'api.sock');
  assertUserError(t, await hostProgram('apiserver', ['--root', root, '--socket-path', socket]), 1, /apiserver: cannot write .*afile\/api\.sock: part of its directory path is a file/);
  assertUserError(t, await brl(['apiserver', '--root', root, '--socket', socket]), 3, /cannot write .*afile\/api\.sock: part of its directory path is a file/);
});

test('apiclient apply with a missing or directory settings file names it', async (t) => {
  const dir = scratch();
  const socket = join(dir, 'api.sock');
  assertUserError(t, await hostProgram('apiclient', ['apply', 'nothere.toml', '--socket-path', socket], { cwd: dir }), 1, /settings file nothere\.toml does not exist/);
  assertUserError(t, await hostProgram('apiclient', ['apply', dir, '--socket-path', socket], { cwd: dir }), 1, /is a directory, not a file/);
});

test('writing where a parent is a file fails with the path and leaves no temp file behind', async (t) => {
  const dir = scratch();
  writeFileSync(join(dir, 'Release.toml'), 'version = "1.0.0"\n');
  const result = await brl(['repo', 'root', 'init', 'Release.toml/root.json'], { cwd: dir });
  assertUserError(t, result, 3, /cannot write Release\.toml\/root\.json: part of its directory path is a file/);
  const slash = await brl(['repo', 'root', 'init', 'newdir/'], { cwd: dir });
  assertUserError(t, slash, 3, /cannot write newdir\/: a path ending in \/ names a directory/);
  t.deepEqual(readdirSync(dir), ['Release.toml'], 'no temp files left in the directory');
});

test('gen-key with a root that does not exist fails before writing a private key no root lists', async (t) => {
  const dir = scratch();
  const result = await brl(['repo', 'root', 'gen-key', 'missing.root.json', 'keys/new.pem'], { cwd: dir });
  assertUserError(t, result, 4, /root file missing\.root\.json does not exist/);
  t.false(existsSync(join(dir, 'keys', 'new.pem')));
  const again = await brl(['repo', 'root', 'gen-key', 'missing.root.json', 'keys/new.pem'], { cwd: dir });
  t.is(again.exitCode, 4, 'a second try is not blocked by a leftover key');
});

test('a signing key path that is a directory is named as such, not as a key with bad permissions', async (t) => {
  const dir = scratch();
  await makeRoot(dir, await generateKeyFile(join(dir, 'keys', 'default.pem'), 'ed25519'), 'root.json');
  mkdirSync(join(dir, 'keydir'), { mode: 0o700 });
  const result = await brl(['repo', 'root', 'sign', join(dir, 'roles', 'root.json'), '--key', 'keydir'], { cwd: dir });
  assertUserError(t, result, 3, /key file .*keydir is a directory, not a file/);
});

test('add-key with a file that is not a key says so instead of complaining about its mode', async (t) => {
  const dir = scratch();
  await makeRoot(dir, await generateKeyFile(join(dir, 'keys', 'default.pem'), 'ed25519'), 'root.json');
  writeFileSync(join(dir, 'Release.toml'), 'version = "1.0.0"\n');
  const result = await brl(['repo', 'root', 'add-key', join(dir, 'roles', 'root.json'), 'Release.toml', '--role', 'root'], { cwd: dir });
  assertUserError(t, result, 3, /Release\.toml is not a PEM key file/);
  t.notRegex(result.stderr, /mode 0644/);
});

test('a time that is neither RFC 3339 nor a duration is explained with both forms', async (t) => {
  const dir = scratch();
  await makeRoot(dir, await generateKeyFile(join(dir, 'keys', 'default.pem'), 'ed25519'), 'root.json');
  const result = await brl(['repo', 'root', 'expire', join(dir, 'roles', 'root.json'), 'tomorrow'], { cwd: dir });
  assertUserError(t, result, 3, /expiry "tomorrow" is neither an RFC 3339 time nor a duration.*2026-12-01T00:00:00Z, "in 3 days"/);
});

test('remove-key of an unknown key lists the root\'s key IDs instead of pointing at a command that does not exist', async (t) => {
  const dir = scratch();
  const signer = await generateKeyFile(join(dir, 'keys', 'default.pem'), 'ed25519');
  await makeRoot(dir, signer, 'root.json');
  const result = await brl(['repo', 'root', 'remove-key', join(dir, 'roles', 'root.json'), 'ffff'], { cwd: dir });
  assertUserError(t, result, 4, /root has no key ffff/);
  t.regex(oneLine(result.stderr), new RegExp(`its key IDs: ${signer.keyId}`));
  t.notRegex(result.stderr, /root show/);
});

test('repo serve of a directory that does not exist fails at once instead of serving 404s', async (t) => {
  const dir = scratch();
  const result = await brl(['repo', 'serve', 'build/repos/default', '--port', '0', '--json'], { cwd: dir });
  assertJsonError(t, result, 4, 'FILE_NOT_FOUND');
  t.regex(result.stdout, /repository directory build\/repos\/default does not exist/);
});

test('repo validate and refresh with a file as the repository directory name it', async (t) => {
  const dir = scratch();
  await makeRoot(dir, await generateKeyFile(join(dir, 'keys', 'default.pem'), 'ed25519'), 'default.root.json');
  writeFileSync(join(dir, 'notes.txt'), 'x\n');
  const validate = await brl(['repo', 'validate', 'notes.txt', '--variant', 'dev', '--root-role-path', 'roles/default.root.json'], { cwd: dir });
  assertUserError(t, validate, 4, /notes\.txt\/dev\/x86_64\/timestamp\.json does not exist/);
});

test('repo build with a missing --link-target fails before any target or metadata is written', async (t) => {
  const dir = scratch();
  mkdirSync(join(dir, 'variants'));
  const imagesDir = join(dir, 'build', 'images', 'x86_64-dev', 'latest');
  mkdirSync(imagesDir, { recursive: true });
  for (const suffix of ['-boot.ext4.lz4', '-root.ext4.lz4', '-root.verity.lz4']) writeFileSync(join(imagesDir, `bottlerocket-dev-x86_64-1.0.0-abcdef12${suffix}`), `image${suffix}\n`);
  writeFileSync(join(dir, 'Release.toml'), 'version = "1.0.0"\n\n[migrations]\n');
  writeFileSync(join(dir, 'Infra.toml'), '[repo.default]\nsigning_keys = { file = { path = "keys/default.pem" } }\n');
  await makeRoot(dir, await generateKeyFile(join(dir, 'keys', 'default.pem'), 'ed25519'), 'default.root.json');
  const missing = await brl(['repo', 'build', '--variant', 'dev', '--link-target', 'extra.txt'], { cwd: dir });
  assertUserError(t, missing, 4, /target file extra\.txt does not exist/);
  const directory = await brl(['repo', 'build', '--variant', 'dev', '--copy-target', 'variants'], { cwd: dir });
  assertUserError(t, directory, 3, /target file variants is not a regular file/);
  t.false(existsSync(join(dir, 'build', 'repos')), 'nothing written');
});

test('host boot: user data the API rejects is the user\'s mistake (exit 3, BAD_USER_DATA), and a directory is named', async (t) => {
  const root = join(scratch(), 'root');
  const init = await brl(['host', 'init', '--root', root]);
  t.is(init.exitCode, 0, init.stderr);
  const userData = join(root, '..', 'user-data.toml');
  writeFileSync(userData, '[settings.motd]\nnested = 1\n');
  const rejected = await brl(['host', 'boot', '--root', root, '--exit', '--user-data', userData, '--json']);
  const error = assertJsonError(t, rejected, 3, 'BAD_USER_DATA');
  t.regex(error.message, /user data from .*user-data\.toml was rejected: Invalid setting 'settings\.motd'/);
  const directory = await brl(['host', 'boot', '--root', root, '--exit', '--user-data', root]);
  assertUserError(t, directory, 3, /user data file .* is a directory, not a file/);
});

// Root reads every file through CAP_DAC_OVERRIDE; without it (and DAC_READ_SEARCH) root is an
// ordinary owner, so the test needs neither another user nor a checkout that other users can read.
const canDropDacCapabilities = process.getuid?.() === 0 && existsSync('/usr/bin/setpriv');

(canDropDacCapabilities ? test : test.skip)('a file the user may not read is reported as permission denied with its path (needs root and setpriv)', async (t) => {
  const dir = scratch();
  writeFileSync(join(dir, 'root.json'), '{}\n', { mode: 0o600 });
  chownSync(join(dir, 'root.json'), 65534, 65534);
  const result = await new Promise<CliResult>((resolve) => {
    execFile('setpriv', ['--bounding-set', '-dac_override,-dac_read_search', join(repoDir, 'bin', 'brl'), 'repo', 'root', 'expire', 'root.json', 'in 3 days'], { cwd: dir }, (error, stdout, stderr) => {
      resolve({ stdout, stderr, exitCode: error ? (typeof error.code === 'number' ? error.code : 1) : 0 });
    });
  });
  assertUserError(t, result, 1, /permission denied: root file root\.json/);
});
