// The real host-container images (host-containers/admin and control): built through the CLI from
// their locked debs, reproducibly, run (chroot) to show their userland works, pushed to a real
// registry (Debian's docker-registry) and pulled back by skopeo under the pinned digest.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import type { ContainerBuildResult } from '../../src/lib/oci/build.ts';
import { readLayoutImage } from '../../src/lib/oci/layout.ts';
import type { PushResult } from '../../src/lib/oci/push.ts';
import { brl } from '../helpers/cli.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';

const run = promisify(execFile);
const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

let registry: TestRegistry;
let work: string;

test.before(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'brl-containers-'));
});

test.after.always(async () => {
  await registry?.stop();
});

async function build(name: string, outputDir: string): Promise<ContainerBuildResult> {
  const result = await brl(['container', 'build', name, '--json', '--output-dir', outputDir], { env: { SOURCE_DATE_EPOCH: '' } });
  if (result.exitCode !== 0) throw new Error(`brl container build ${name} failed (${result.exitCode}): ${result.stdout}${result.stderr}`);
  return JSON.parse(result.stdout) as ContainerBuildResult;
}

async function push(layoutDir: string, name: string, reference: string): Promise<PushResult> {
  const result = await brl(['container', 'push', name, '--registry', reference, '--layout-dir', layoutDir, '--json']);
  if (result.exitCode !== 0) throw new Error(`brl container push ${name} failed (${result.exitCode}): ${result.stdout}${result.stderr}`);
  return JSON.parse(result.stdout) as PushResult;
}

async function filesOf(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) files.set(relative(dir, join(entry.parentPath, entry.name)), await readFile(join(entry.parentPath, entry.name)));
  }
  return files;
}

/** The image's root, unpacked from its one layer as a runtime would (owners numeric). */
async function unpack(built: ContainerBuildResult, into: string): Promise<string> {
  await mkdir(into, { recursive: true });
  await run('tar', ['-xzf', join(built.layoutDir, 'blobs/sha256', built.layer.digest.slice(7)), '-C', into, '--numeric-owner']);
  return into;
}

async function pushAndPull(built: ContainerBuildResult, name: string): Promise<PushResult> {
  const pushed = await push(built.layoutDir, name, `${registry.address}/brl/${name}`);
  const pulled = join(work, `pulled-${name}`);
  await run('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', `docker://${pushed.reference}`, `oci:${pulled}:${name}`]);
  const image = await readLayoutImage(pulled, name);
  if (image.manifest.digest !== built.manifestDigest) throw new Error(`skopeo pulled ${image.manifest.digest}, brl built ${built.manifestDigest}`);
  return pushed;
}

test.serial('control: the same bytes twice, a working apiclient against the host API socket, pushed and pulled by digest', async (t) => {
  const first = await build('control', join(work, 'a'));
  const second = await build('control', join(work, 'b'));
  t.is(first.manifestDigest, second.manifestDigest);
  t.deepEqual(await filesOf(first.layoutDir), await filesOf(second.layoutDir));
  t.log(`control: ${mib(first.layer.size)} gzip, ${mib(first.layer.uncompressedSize)} tar, ${first.debs} debs, built in ${first.seconds} s`);

  const root = await unpack(first, join(work, 'control-root'));
  // The host mounts its API socket at /run/api.sock; a stand-in answers there.
  const requests: string[] = [];
  const api = createServer((request, response) => {
    requests.push(`${request.method ?? ''} ${request.url ?? ''}`);
    if (request.url === '/os') {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"pretty_name":"brl test host"}');
      return;
    }
    response.writeHead(404).end('not found');
  });
  await new Promise<void>((resolve) => api.listen(join(root, 'run/api.sock'), resolve));
  t.teardown(() => new Promise<void>((resolve) => api.close(() => resolve())));
  const inImage = (args: string[]) => run('chroot', [root, '/usr/bin/env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', ...args]);
  const { stdout } = await inImage(['apiclient', 'raw', '-u', '/os']);
  t.is(stdout, '{"pretty_name":"brl test host"}');
  const missing = await t.throwsAsync(inImage(['apiclient', 'get', '/nonesuch']));
  t.regex(String((missing as { stderr?: string } | undefined)?.stderr), /404/);
  t.deepEqual(requests, ['GET /os', 'GET /nonesuch']);
  t.is((await inImage(['awk', 'BEGIN { print 6 * 7 }'])).stdout, '42\n');

  const pushed = await pushAndPull(first, 'control');
  t.is(pushed.reference, `${registry.address}/brl/control@${first.manifestDigest}`);
  t.log(`control: pushed in ${pushed.seconds} s as ${pushed.reference}`);
});

test.serial('admin: a shell and the usual tools that run, root in /etc/passwd, pushed and pulled by digest', async (t) => {
  const built = await build('admin', join(work, 'a'));
  t.log(`admin: ${mib(built.layer.size)} gzip, ${mib(built.layer.uncompressedSize)} tar, ${built.debs} debs, built in ${built.seconds} s`);
  const root = await unpack(built, join(work, 'admin-root'));
  const script = 'id -un; ls -ld /bin | cut -c1; ip -V >/dev/null && less --version >/dev/null && pgrep --version >/dev/null && findmnt --version >/dev/null && echo tools; awk "BEGIN { print 6 * 7 }"; stat -c %a /root /tmp';
  const { stdout } = await run('chroot', [root, '/usr/bin/env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'bash', '-c', script]);
  t.is(stdout, 'root\nl\ntools\n42\n700\n1777\n');
  // dpkg's view of the image: every locked deb installed, conffiles with their md5s.
  const status = await readFile(join(root, 'var/lib/dpkg/status'), 'utf8');
  t.is(status.match(/^Status: install ok installed$/gm)?.length, built.debs);
  t.regex(status, /^Package: bash\nStatus: install ok installed\n[\s\S]*?Conffiles:\n \/etc\/bash\.bashrc [0-9a-f]{32}\n/m);

  const config = JSON.parse(await readFile(join(built.layoutDir, 'blobs/sha256', built.configDigest.slice(7)), 'utf8')) as { config: { Entrypoint: string[]; User: string }; created: string };
  t.deepEqual(config.config.Entrypoint, ['/usr/libexec/brl/admin-start']);
  t.is(config.created, '1980-01-01T00:00:00Z');

  const pushed = await pushAndPull(built, 'admin');
  t.log(`admin: pushed in ${pushed.seconds} s as ${pushed.reference}`);
});

test.serial('push: a registry that is down is exit 7 with the registry named, under --json too', async (t) => {
  const result = await brl(['container', 'push', 'control', '--registry', '127.0.0.1:9/brl/control', '--layout-dir', join(work, 'a', 'control'), '--json']);
  t.is(result.exitCode, 7);
  const error = (JSON.parse(result.stdout) as { error: { code: string; message: string; hint: string } }).error;
  t.is(error.code, 'REGISTRY_UNREACHABLE');
  t.regex(error.message, /registry 127\.0\.0\.1:9 /);
  t.regex(error.hint, /start the registry or correct --registry/);
});
