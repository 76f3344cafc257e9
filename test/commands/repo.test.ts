// `brl repo` as a new user runs it: a fresh root, a build, signing apart from building, serving to a TUF client.
import test from 'ava';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Updater } from 'tuf-js';
import { brl, repoDir } from '../helpers/cli.ts';
import { generateKeyFile } from '../../src/lib/signing/key-file.ts';
import { makeRoot } from '../lib/repo/helpers.ts';

const images = ['-boot.ext4.lz4', '-root.ext4.lz4', '-root.verity.lz4'];

function project(): string {
  const dir = mkdtempSync(join(tmpdir(), 'brl-repo-cli-'));
  mkdirSync(join(dir, 'variants'));
  const imagesDir = join(dir, 'build', 'images', 'x86_64-dev', 'latest');
  mkdirSync(imagesDir, { recursive: true });
  for (const suffix of images) writeFileSync(join(imagesDir, `bottlerocket-dev-x86_64-1.0.0-abcdef12${suffix}`), `image${suffix}\n`.repeat(50));
  writeFileSync(join(dir, 'Release.toml'), 'version = "1.0.0"\n\n[migrations]\n');
  writeFileSync(join(dir, 'Infra.toml'), '[repo.default]\nsigning_keys = { file = { path = "keys/default.pem" } }\n');
  return dir;
}

async function ok(args: string[], cwd: string): Promise<string> {
  const result = await brl(args, { cwd });
  if (result.exitCode !== 0) throw new Error(`brl ${args.join(' ')} exited ${result.exitCode}: ${result.stderr}${result.stdout}`);
  return result.stdout;
}

/** Error output joined back into one line (oclif wraps it to the terminal width). */
const oneLine = (text: string) => text.replace(/\s*\n\s*›\s*/g, ' ');

/** The same root as freshRoot, made in-process so only the behaviour under test goes through the CLI. */
async function quickRoot(dir: string): Promise<void> {
  await makeRoot(dir, await generateKeyFile(join(dir, 'keys', 'default.pem'), 'ed25519'), 'default.root.json');
}

async function freshRoot(dir: string): Promise<void> {
  const root = 'roles/default.root.json';
  await ok(['repo', 'root', 'init', root], dir);
  await ok(['repo', 'root', 'expire', root, 'in 52 weeks'], dir);
  for (const role of ['root', 'snapshot', 'targets', 'timestamp']) await ok(['repo', 'root', 'set-threshold', root, role, '1'], dir);
  await ok(['repo', 'root', 'gen-key', root, 'keys/default.pem', '--type', 'ecdsa'], dir);
  await ok(['repo', 'root', 'sign', root, '--key', 'keys/default.pem', '--require-complete'], dir);
}

test('fresh root, unsigned build, separate signing, validate, and a tuf-js client via brl repo serve', async (t) => {
  const dir = project();
  await freshRoot(dir);
  t.is(statSync(join(dir, 'keys', 'default.pem')).mode & 0o777, 0o600);

  const build = JSON.parse(await ok(['repo', 'build', '--variant', 'dev', '--unsigned', '--json'], dir));
  t.false(build.signed);
  t.is(build.version, '1.0.0');
  const unsigned = await brl(['repo', 'validate', 'build/repos/default', '--variant', 'dev'], { cwd: dir });
  t.is(unsigned.exitCode, 6);
  t.regex(oneLine(unsigned.stderr), /timestamp\.json: 0 valid signature\(s\) of 1 required by root v1/);
  t.notRegex(unsigned.stderr, /at .*\.ts:\d+/, 'no stack trace for a verification failure');

  await ok(['repo', 'sign', 'build/repos/default'], dir);
  const validated = JSON.parse(await ok(['repo', 'validate', 'build/repos/default', '--variant', 'dev', '--targets', '--json'], dir));
  t.is(validated.targetsChecked, 4);

  const server = spawn(join(repoDir, 'bin', 'brl'), ['repo', 'serve', 'build/repos/default', '--port', '0', '--json', '--quiet'], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    server.kill('SIGTERM');
  });
  const firstLine = await new Promise<string>((resolve) => createInterface({ input: server.stdout! }).once('line', resolve));
  const { url } = JSON.parse(firstLine) as { url: string };
  const metadataDir = mkdtempSync(join(tmpdir(), 'brl-tufjs-'));
  writeFileSync(join(metadataDir, 'root.json'), readFileSync(join(dir, 'roles', 'default.root.json')));
  const updater = new Updater({ metadataDir, metadataBaseUrl: `${url}dev/x86_64`, targetBaseUrl: `${url}targets`, targetDir: metadataDir });
  await updater.refresh();
  for (const suffix of images) {
    const name = `bottlerocket-dev-x86_64-1.0.0-abcdef12${suffix}`;
    const info = await updater.getTargetInfo(name);
    const path = await updater.downloadTarget(info!, join(metadataDir, name));
    t.deepEqual(readFileSync(path), readFileSync(join(dir, 'build', 'images', 'x86_64-dev', 'latest', name)));
  }
});

test('check-expirations, refresh and a build that signs with the configured key', async (t) => {
  const dir = project();
  await quickRoot(dir);
  await ok(['repo', 'build', '--variant', 'dev'], dir);
  const soon = await brl(['repo', 'check-expirations', 'build/repos/default', '--variant', 'dev', '--within', '8 days'], { cwd: dir });
  t.is(soon.exitCode, 6);
  t.regex(oneLine(soon.stderr), /timestamp \(expires \S+\) expire\(s\) before/);
  const later = JSON.parse(await ok(['repo', 'check-expirations', 'build/repos/default', '--variant', 'dev', '--within', '3 days', '--json'], dir));
  t.deepEqual(later.roles.map((role: { role: string }) => role.role), ['root', 'targets', 'snapshot', 'timestamp']);

  const before = JSON.parse(await ok(['repo', 'validate', 'build/repos/default', '--variant', 'dev', '--json'], dir));
  const refreshed = JSON.parse(await ok(['repo', 'refresh', 'build/repos/default', '--variant', 'dev', '--json'], dir));
  t.true(refreshed.versions.timestamp > before.versions.timestamp);
  const after = JSON.parse(await ok(['repo', 'validate', 'build/repos/default', '--variant', 'dev', '--json'], dir));
  t.is(after.versions.timestamp, refreshed.versions.timestamp);
});

test('repo build --arch aarch64 reads build/images/aarch64-dev/latest and writes dev/aarch64 beside dev/x86_64, each validating with its own targets', async (t) => {
  const dir = project();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const aarch64Images = join(dir, 'build', 'images', 'aarch64-dev', 'latest');
  mkdirSync(aarch64Images, { recursive: true });
  for (const suffix of images) writeFileSync(join(aarch64Images, `bottlerocket-dev-aarch64-1.0.0-abcdef12${suffix}`), `arm image${suffix}\n`.repeat(50));
  await quickRoot(dir);
  await ok(['repo', 'build', '--variant', 'dev', '--arch', 'x86_64'], dir);
  const arm = JSON.parse(await ok(['repo', 'build', '--variant', 'dev', '--arch', 'aarch64', '--json'], dir));
  t.like(arm, { arch: 'aarch64', version: '1.0.0', metadataDir: join(dir, 'build', 'repos', 'default', 'dev', 'aarch64') });
  t.deepEqual(arm.targets.map((target: { name: string }) => target.name).sort(), ['manifest.json', ...images.map((suffix) => `bottlerocket-dev-aarch64-1.0.0-abcdef12${suffix}`)].sort());
  for (const arch of ['x86_64', 'aarch64']) {
    const validated = JSON.parse(await ok(['repo', 'validate', 'build/repos/default', '--variant', 'dev', '--arch', arch, '--targets', '--json'], dir));
    t.like(validated, { targetCount: 4, targetsChecked: 4 }, arch);
  }
});

test('a private key file readable by others is refused by brl repo sign with a hint, not a stack', async (t) => {
  const dir = project();
  await quickRoot(dir);
  await ok(['repo', 'build', '--variant', 'dev', '--unsigned'], dir);
  chmodSync(join(dir, 'keys', 'default.pem'), 0o644);
  const result = await brl(['repo', 'sign', 'build/repos/default', '--json'], { cwd: dir });
  t.is(result.exitCode, 3);
  const { error } = JSON.parse(result.stdout) as { error: { code: string; message: string; hint: string } };
  t.is(error.code, 'KEY_FILE_PERMISSIONS');
  t.regex(error.message, /default\.pem has mode 0644/);
  t.regex(error.hint, /^chmod 600 /);
});

test('signing with a key that is not in root is refused before anything is signed', async (t) => {
  const dir = project();
  await quickRoot(dir);
  await ok(['repo', 'build', '--variant', 'dev', '--unsigned'], dir);
  await generateKeyFile(join(dir, 'keys', 'stranger.pem'), 'ed25519');
  const before = readFileSync(join(dir, 'build', 'repos', 'default', 'dev', 'x86_64', 'timestamp.json'));
  const result = await brl(['repo', 'sign', 'build/repos/default', '--key', 'keys/stranger.pem'], { cwd: dir });
  t.is(result.exitCode, 6);
  t.regex(oneLine(result.stderr), /stranger\.pem\) is not in root v1/);
  t.deepEqual(readFileSync(join(dir, 'build', 'repos', 'default', 'dev', 'x86_64', 'timestamp.json')), before);
});

test('two root rotations (v1 → v2 → v3, thresholds raised) reach a client that trusts v1 through sign, refresh and build', async (t) => {
  const dir = project();
  await freshRoot(dir);
  const root = 'roles/default.root.json';
  const trustedV1 = join(dir, 'trusted-v1.root.json');
  writeFileSync(trustedV1, readFileSync(join(dir, root)));
  await ok(['repo', 'build', '--variant', 'dev', '--unsigned'], dir);
  const keyIds = (): string[] => Object.keys(JSON.parse(readFileSync(join(dir, root), 'utf8')).signed.keys);
  const [keyA] = keyIds();
  /** What a client holding root v1 sees: brl's own validation, then tuf-js over HTTP. */
  const followsFromV1 = async (): Promise<number> => {
    const validated = JSON.parse(await ok(['repo', 'validate', 'build/repos/default', '--variant', 'dev', '--root-role-path', trustedV1, '--json'], dir));
    const server = spawn(join(repoDir, 'bin', 'brl'), ['repo', 'serve', 'build/repos/default', '--port', '0', '--json', '--quiet'], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const { url } = JSON.parse(await new Promise<string>((resolve) => createInterface({ input: server.stdout! }).once('line', resolve))) as { url: string };
      const metadataDir = mkdtempSync(join(tmpdir(), 'brl-tufjs-rotation-'));
      writeFileSync(join(metadataDir, 'root.json'), readFileSync(trustedV1));
      await new Updater({ metadataDir, metadataBaseUrl: `${url}dev/x86_64`, targetBaseUrl: `${url}targets`, targetDir: metadataDir }).refresh();
      t.is(JSON.parse(readFileSync(join(metadataDir, 'root.json'), 'utf8')).signed.version, validated.rootVersion, 'tuf-js ends on the same root');
    } finally {
      server.kill('SIGTERM');
    }
    return validated.rootVersion as number;
  };

  // v2: key A replaced by B everywhere; signed by A (v1's root key) and B (its own).
  await ok(['repo', 'root', 'gen-key', root, 'keys/b.pem', '--type', 'ed25519'], dir);
  await ok(['repo', 'root', 'remove-key', root, keyA as string], dir);
  await ok(['repo', 'root', 'sign', root, '--key', 'keys/default.pem', '--key', 'keys/b.pem', '--require-complete'], dir);
  await ok(['repo', 'sign', 'build/repos/default', '--key', 'keys/b.pem'], dir);
  t.true(existsSync(join(dir, 'build', 'repos', 'default', 'dev', 'x86_64', '2.root.json')), 'sign publishes 2.root.json');
  t.is(await followsFromV1(), 2);

  // v3: B replaced by C and D, thresholds 2 for root and timestamp; signed by B (v2) and C + D (v3).
  const [keyB] = keyIds();
  await ok(['repo', 'root', 'gen-key', root, 'keys/c.pem', '--type', 'ed25519'], dir);
  await ok(['repo', 'root', 'gen-key', root, 'keys/d.pem', '--type', 'ecdsa'], dir);
  await ok(['repo', 'root', 'remove-key', root, keyB as string], dir);
  for (const role of ['root', 'timestamp']) await ok(['repo', 'root', 'set-threshold', root, role, '2'], dir);
  await ok(['repo', 'root', 'sign', root, '--key', 'keys/b.pem', '--key', 'keys/c.pem', '--key', 'keys/d.pem', '--require-complete'], dir);
  await ok(['repo', 'refresh', 'build/repos/default', '--variant', 'dev', '--key', 'keys/c.pem', '--key', 'keys/d.pem'], dir);
  t.true(existsSync(join(dir, 'build', 'repos', 'default', 'dev', 'x86_64', '3.root.json')), 'refresh publishes 3.root.json');
  t.is(await followsFromV1(), 3);

  // A fresh repository built with v3 publishes the whole chain too.
  await ok(['repo', 'build', '--variant', 'dev', '--outdir', 'build/repos/fresh', '--key', 'keys/c.pem', '--key', 'keys/d.pem'], dir);
  const fresh = await brl(['repo', 'validate', 'build/repos/fresh', '--variant', 'dev', '--root-role-path', trustedV1, '--json'], { cwd: dir });
  t.is(fresh.exitCode, 0, fresh.stderr);
  t.is(JSON.parse(fresh.stdout).rootVersion, 3);

  // A chain with a hole is refused before anything is written, naming the missing version.
  rmSync(join(dir, 'roles', '2.default.root.json'));
  const gap = await brl(['repo', 'build', '--variant', 'dev', '--outdir', 'build/repos/gap', '--key', 'keys/c.pem', '--key', 'keys/d.pem', '--json'], { cwd: dir });
  t.is(gap.exitCode, 4);
  t.like(JSON.parse(gap.stdout), { error: { code: 'ROOT_CHAIN_GAP' } });
  t.regex(JSON.parse(gap.stdout).error.message, /root v2 is neither published in .* nor kept beside .*default\.root\.json as 2\.default\.root\.json: a client that trusts v1 could not reach v3/);
  t.false(existsSync(join(dir, 'build', 'repos', 'gap', 'dev', 'x86_64', 'timestamp.json')));
});
