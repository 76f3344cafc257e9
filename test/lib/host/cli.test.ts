import test from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { brl, repoDir } from '../../helpers/cli.ts';

function apiclient(args: string[], stdin?: string): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  return new Promise((resolve) => {
    const child = execFile(join(repoDir, 'bin', 'apiclient'), args, (error, stdout, stderr) => {
      resolve({ stdout, stderr, exitCode: error ? (typeof error.code === 'number' ? error.code : 1) : 0 });
    });
    child.stdin?.end(stdin ?? '');
  });
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** `brl host init` + `brl host boot` serving in the background, as a new user would run them. */
async function bootedRoot(t: import('ava').ExecutionContext): Promise<{ root: string; socket: string; boot: ChildProcess }> {
  const root = await mkdtemp(join(tmpdir(), 'brl-cli-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const init = await brl(['host', 'init', '--root', root, '--variant', 'dev', '--version', '1.0.0']);
  t.is(init.exitCode, 0, init.stderr);
  await writeFile(join(root, 'user-data.toml'), '[settings]\nmotd = "from user data"\n[settings.kernel.sysctl]\n"vm.max_map_count" = "262144"\n');
  const boot = spawn(join(repoDir, 'bin', 'brl'), ['host', 'boot', '--root', root, '--user-data', join(root, 'user-data.toml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  boot.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  boot.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // Stopping checkpoints the datastore's log into live/: the root is removed only after the process is gone.
  const exited = once(boot, 'exit');
  t.teardown(async () => {
    boot.kill('SIGTERM');
    await exited;
  });
  await waitFor(async () => output.includes('serving the API on'), `boot to finish (output so far: ${output})`);
  return { root, socket: join(root, 'run/api.sock'), boot };
}

test('brl host boot serves the API; apiclient set motd=hi changes the rendered /etc/motd', async (t) => {
  const { root, socket } = await bootedRoot(t);
  t.is(await readFile(join(root, 'etc/motd'), 'utf8'), 'from user data\n');
  t.is(await readFile(join(root, 'etc/sysctl.d/90-settings.conf'), 'utf8'), 'vm.max_map_count = 262144\n');
  t.regex(await readFile(join(root, 'etc/updog.toml'), 'utf8'), /^seed = \d+$/m);
  const set = await apiclient(['-s', socket, 'set', 'motd=hi']);
  t.is(set.exitCode, 0, set.stderr);
  t.is(set.stdout, '');
  await waitFor(async () => (await readFile(join(root, 'etc/motd'), 'utf8')) === 'hi\n', '/etc/motd to say hi');
  const get = await apiclient(['get', 'settings.motd', '-s', socket]);
  t.is(get.exitCode, 0, get.stderr);
  t.is(get.stdout, '{\n  "settings": {\n    "motd": "hi"\n  }\n}\n');
});

test('apiclient: get forms, set --json with null, apply from a file and stdin, raw, and exit codes', async (t) => {
  const { root, socket } = await bootedRoot(t);
  const both = await apiclient(['-s', socket, 'get', '/settings', 'settings.motd']);
  t.is(both.exitCode, 2);
  t.regex(both.stderr, /either prefixes or one URI/);
  t.deepEqual(JSON.parse((await apiclient(['-s', socket, 'get'])).stdout).os.variant_id, 'dev');
  t.is((await apiclient(['-s', socket, 'get', 'motd'])).stdout, '{}\n');

  const wrong = await apiclient(['-s', socket, 'set', 'motd=42']);
  t.is(wrong.exitCode, 1);
  t.regex(wrong.stderr, /Failed PATCH request to '\/settings\/keypair\?tx=apiclient-set-[A-Za-z0-9]{16}': Status 400 when PATCHing .*Unable to match your input to the data model/);
  t.is((await apiclient(['-s', socket, 'set', 'motd=x', '--json', '{}'])).exitCode, 2);

  t.is((await apiclient(['-s', socket, 'set', '--json', '{"settings": {"motd": null}}'])).exitCode, 0);
  t.deepEqual(JSON.parse((await apiclient(['-s', socket, 'get', '/settings?keys=settings.motd'])).stdout), {});

  await writeFile(join(root, 'apply.toml'), '[settings.ntp]\noptions = ["prefer"]\n');
  const applied = await apiclient(['-s', socket, 'apply', join(root, 'apply.toml'), `file://${join(root, 'apply.toml')}`, '-'], '{"settings": {"motd": "from stdin"}}');
  t.is(applied.exitCode, 0, applied.stderr);
  const settings = JSON.parse((await apiclient(['-s', socket, 'raw', '-u', '/settings'])).stdout);
  t.is(settings.motd, 'from stdin');
  t.deepEqual(settings.ntp.options, ['prefer']);
  const noSettings = await apiclient(['-s', socket, 'apply', '-'], 'motd = "x"\n');
  t.is(noSettings.exitCode, 1);
  t.regex(noSettings.stderr, /did not contain a 'settings' key at top level/);

  const raw = await apiclient(['-s', socket, 'raw', '-m', 'PATCH', '-u', '/settings?tx=r', '-d', '{"motd": 1}']);
  t.is(raw.exitCode, 1);
  t.regex(raw.stderr, /Status 400 when PATCHing \/settings\?tx=r: Invalid setting 'settings\.motd': expected a string/);
  const usage = await apiclient(['-s', socket, 'raw']);
  t.is(usage.exitCode, 2);
  const down = await apiclient(['-s', join(root, 'nothing.sock'), 'get']);
  t.is(down.exitCode, 1);
  t.regex(down.stderr, /Failed to connect to the API socket/);
});

test('brl apiserver refuses a root without a datastore with a hint', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'brl-cli-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const result = await brl(['apiserver', '--root', root]);
  t.is(result.exitCode, 4);
  // oclif wraps long lines (a long temp path moves the breaks): read the message unwrapped.
  const message = result.stderr.replace(/\s*\n\s*›\s*/g, ' ');
  t.regex(message, /Datastore does not exist at \S+, did storewolf run\?/);
  t.regex(message, /brl host boot --root/);
});

test('src/bin/apiclient.ts loads only node: modules and its own small modules (no oclif, AWS SDK, handlebars)', async (t) => {
  const probe = `
    const { registerHooks } = require('node:module');
    const loaded = [];
    registerHooks({ resolve(specifier, context, next) { const result = next(specifier, context); loaded.push(result.url); return result; } });
    process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify(loaded)));
    process.argv = [process.argv[0], 'apiclient', '--help'];
    import(${JSON.stringify(join(repoDir, 'dist/bin/apiclient.js'))});
  `;
  const stderr = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['-e', probe], (error, _out, err) => (error ? reject(error) : resolve(err))),
  );
  const loaded = (JSON.parse(stderr.slice(stderr.indexOf('LOADED ') + 7)) as string[]).filter((url) => !url.startsWith('node:'));
  t.true(loaded.length > 1);
  for (const url of loaded) t.regex(url, /\/dist\/lib\/host\/apiclient\/[a-z-]+\.js$|\/dist\/bin\/apiclient\.js$/, `apiclient loaded ${url}`);
});

test('bin/apiserver serves a booted root, refuses a second server on the socket, and stops on SIGTERM', async (t) => {
  const { root, socket, boot } = await bootedRoot(t);
  const second = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    execFile(join(repoDir, 'bin', 'apiserver'), ['--root', root], (error, _stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stderr }),
    );
  });
  t.is(second.code, 1);
  t.regex(second.stderr, /another apiserver is already listening on/);
  boot.kill('SIGTERM');
  await new Promise((resolve) => boot.once('exit', resolve));
  const server = spawn(join(repoDir, 'bin', 'apiserver'), ['--root', root, '--socket-gid', '4321'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  server.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await waitFor(async () => stderr.includes('listening on'), 'bin/apiserver to listen');
  const get = await apiclient(['-s', socket, 'get', 'settings.motd']);
  t.deepEqual(JSON.parse(get.stdout), { settings: { motd: 'from user data' } });
  const { stdout: mode } = await new Promise<{ stdout: string }>((resolve) => execFile('stat', ['-c', '%a %g', socket], (_e, stdout) => resolve({ stdout })));
  t.is(mode.trim(), '660 4321');
  server.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => server.once('exit', (exitCode) => resolve(exitCode)));
  t.is(code, 0);
  const usage = await new Promise<number>((resolve) =>
    execFile(join(repoDir, 'bin', 'apiserver'), ['--bogus'], (error) => resolve(error && typeof error.code === 'number' ? error.code : 0)),
  );
  t.is(usage, 2);
});
