// The dev image as a container host: both containerd instances of the containerd package
// (host-containerd for host containers, containerd for workloads) come up on their own sockets
// with the overlayfs snapshotter. The admin container, pinned by digest in the dev defaults and
// enabled by user data, is pulled through a registry mirror (settings.container-registry) from a
// docker-registry on this machine that the guest reaches through QEMU's guestfwd, runs, answers
// `apiclient exec`, and stops when disabled. A host container whose registry refuses fails
// clearly and retries with growing delays while the host stays healthy, until it is disabled.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'smol-toml';
import { brl, repoDir } from '../helpers/cli.ts';
import { devBuilder, osDiskOf } from '../helpers/dev-image.ts';
import { extractJournal, readJournal } from '../helpers/guest-journal.ts';
import { startRegistry } from '../helpers/registry.ts';
import { bootVm, type BootedVm } from '../helpers/vm.ts';

const buildDev = devBuilder('vm-host-containers');
/** The guest's end of the forward to the test registry: http://10.0.2.100:5000. */
const mirrorPort = 5000;

/** The admin image's pin in the dev defaults (brl.invalid/brl/admin@sha256:…). */
function defaultAdminSource(): string {
  const defaults = parse(readFileSync(join(repoDir, 'src/lib/host/defaults/dev/defaults.d/60-host-containers.toml'), 'utf8')) as { settings: { 'host-containers': { admin: { source: string } } } };
  return defaults.settings['host-containers'].admin.source;
}

/** `apiclient exec admin CMD…` through the API bridge: its stdout, or the error when it fails. */
async function execAdmin(vm: BootedVm, ...command: string[]): Promise<{ ok: true; stdout: string } | { ok: false; error: string }> {
  try {
    return { ok: true, stdout: (await vm.apiclient('exec', 'admin', ...command)).stdout };
  } catch (error) {
    return { ok: false, error: `${(error as Error).message}` };
  }
}

test('containerd instances start with overlayfs on their own sockets; the admin container pinned in the defaults is pulled through a mirror, runs, answers exec and stops when disabled; a container whose registry refuses fails clearly and retries', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-vm-host-containers-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const registry = await startRegistry();
  t.teardown(() => registry.stop());
  const built = await brl(['container', 'build', 'admin', '--json']);
  t.is(built.exitCode, 0, built.stderr);
  const pushed = await brl(['container', 'push', 'admin', '--registry', `${registry.address}/brl/admin`, '--json']);
  t.is(pushed.exitCode, 0, pushed.stderr);
  const digest = (JSON.parse(pushed.stdout) as { digest: string }).digest;
  t.is(defaultAdminSource(), `brl.invalid/brl/admin@${digest}`, 'the dev defaults pin the admin image brl container build makes');
  const image = await buildDev();

  const userData = join(dir, 'user-data.toml');
  writeFileSync(userData, [
    // Nothing listens on port 9 of the guest's loopback.
    '[settings.host-containers.control]',
    'enabled = true',
    'source = "127.0.0.1:9/brl/control:0.1.0"',
    '',
    '[settings.host-containers.admin]',
    'enabled = true',
    '',
    // brl.invalid resolves nowhere: the mirror is the only way to the image.
    '[[settings.container-registry.mirrors]]',
    'registry = "brl.invalid"',
    `endpoint = ["http://10.0.2.100:${mirrorPort}"]`,
    '',
  ].join('\n'));
  const port = registry.address.split(':')[1] as string;
  const vm = await bootVm(t, { image: osDiskOf(image), userData, forwards: [`${mirrorPort}:${port}`] });
  const apiReadyAt = Date.now();
  t.log(`API ready after ${vm.readySeconds.toFixed(1)} s (TCG)`);

  // The admin container is running once its status file (read from inside it, through the host root it sees) says so.
  let running: { state: string; message: string } | undefined;
  let lastTry = '';
  for (const deadline = Date.now() + 300_000; running === undefined && Date.now() < deadline; await sleep(1000)) {
    const result = await execAdmin(vm, 'cat', '/.bottlerocket/rootfs/run/host-ctr/admin.status.json');
    lastTry = result.ok ? result.stdout : result.error;
    if (result.ok && (JSON.parse(result.stdout) as { state: string }).state === 'running') running = JSON.parse(result.stdout) as { state: string; message: string };
  }
  const runningSeconds = (Date.now() - apiReadyAt) / 1000;
  t.truthy(running, `the admin container did not run within 300 s of API ready: ${lastTry}`);
  t.log(`admin container running ${runningSeconds.toFixed(1)} s after API ready (TCG, pulled through the mirror)`);
  const osRelease = await execAdmin(vm, 'cat', '/.bottlerocket/rootfs/etc/os-release');
  t.true(osRelease.ok, osRelease.ok ? '' : osRelease.error);
  const release = osRelease.ok ? osRelease.stdout : '';
  t.regex(release, /^VARIANT_ID=dev$/m, 'the host\'s release, read through the admin container');
  t.regex(release, new RegExp(`^VERSION_ID="?${image.version.replaceAll('.', '\\.')}"?$`, 'm'));

  // Type=notify: systemd reports "Started" only once containerd said it serves its socket.
  await vm.waitForConsole(/Started host-containerd\.service/, 1, 300);
  await vm.waitForConsole(/Started containerd\.service/, 1, 300);
  await vm.waitForConsole(/Started host-containers@control\.service/, 1, 300);
  const status = await vm.api('GET', '/apply-status');
  t.is(status.status, 200);
  t.regex(status.body, /\/etc\/containerd\/config\.toml/, 'the workload config was rendered from its template');
  t.regex(status.body, /\/etc\/host-containers\/host-ctr\.toml/, 'host-ctr\'s registry config was rendered from settings.container-registry');
  // Long enough for a few attempts (1 s, 2 s, 4 s apart).
  await sleep(20_000);
  t.is((await vm.api('GET', '/os')).status, 200, 'the host stays healthy');
  await vm.apiclient('set', 'host-containers.control.enabled=false', 'host-containers.admin.enabled=false');
  // The apply runs after the commit: its restart command stops the unit (host-ctr ends on SIGTERM).
  type Apply = { keys: string[] | 'all'; state: string; services: { name: string; commands: { command: string; status: string; stderr: string }[] }[] };
  let disabled: Apply | undefined;
  for (const deadline = Date.now() + 180_000; Date.now() < deadline; await sleep(1000)) {
    const applies = JSON.parse((await vm.api('GET', '/apply-status')).body) as Apply[];
    disabled = applies.find((apply) => Array.isArray(apply.keys) && apply.keys.includes('settings.host-containers.control.enabled'));
    if (disabled !== undefined && disabled.state !== 'running') break;
  }
  t.is(disabled?.state, 'succeeded');
  const restart = disabled?.services.find((service) => service.name === 'host-containers')?.commands[0];
  t.is(restart?.status, 'ok', restart?.stderr);
  t.regex(restart?.stderr ?? '', /host-containers: control disabled/);
  t.regex(restart?.stderr ?? '', /host-containers: admin disabled/);
  let afterStop: Awaited<ReturnType<typeof execAdmin>> = { ok: true, stdout: '' };
  for (const deadline = Date.now() + 120_000; afterStop.ok && Date.now() < deadline; await sleep(1000)) afterStop = await execAdmin(vm, 'true');
  t.false(afterStop.ok, 'exec into the stopped admin container is refused');
  // A clean reboot writes the whole journal back to the data disk before the VM is stopped.
  await vm.reboot();
  await vm.stop();

  const entries = readJournal(extractJournal(join(vm.stateDir, 'data.qcow2'), join(dir, 'journal')));
  const firstBoot = entries[0]?.bootId;
  const first = entries.filter((entry) => entry.bootId === firstBoot);
  for (const [unit, socket] of [['host-containerd.service', '/run/host-containerd/containerd.sock'], ['containerd.service', '/run/containerd/containerd.sock']] as const) {
    const logged = first.filter((entry) => entry.unit === unit).map((entry) => entry.message);
    t.true(logged.some((message) => message.includes('serving...') && message.includes(`address=${socket}`)), `${unit} serves ${socket}`);
    t.true(logged.some((message) => message.includes('containerd successfully booted')), `${unit} booted`);
    // logrus quotes the message: the plugin's name is inside escaped quotes.
    t.true(logged.some((message) => /msg="loading plugin \\"io\.containerd\.snapshotter\.v1\.overlayfs\\"/.test(message)), `${unit} loads overlayfs`);
    t.false(logged.some((message) => /skip loading plugin \\"io\.containerd\.snapshotter\.v1\.overlayfs\\"/.test(message)), `${unit} did not skip overlayfs`);
  }
  const hostCtr = first.filter((entry) => entry.unit === 'host-containers@control.service').map((entry) => entry.message);
  t.log(`host-ctr in the journal: ${hostCtr.join(' | ')}`);
  const failures = hostCtr.filter((message) => message === 'host container control: failed: registry 127.0.0.1:9 (http://127.0.0.1:9) did not answer while reading manifest 0.1.0: ECONNREFUSED');
  t.true(failures.length >= 3, `host-ctr reported the refusal and retried: ${hostCtr.slice(0, 8).join(' | ')}`);
  t.true(failures.length <= 8, 'with growing delays, not in a tight loop');
  t.true(hostCtr.includes('host container control: stopped: stopped'), 'disabling stopped it');
  const adminEntries = first.filter((entry) => entry.unit === 'host-containers@admin.service');
  const admin = adminEntries.map((entry) => entry.message);
  const pullingAt = adminEntries.find((entry) => entry.message.startsWith('host container admin: pulling'))?.monotonic;
  const runningAt = adminEntries.find((entry) => entry.message.startsWith('host container admin: running'))?.monotonic;
  if (pullingAt !== undefined && runningAt !== undefined) t.log(`in the guest: pull through the mirror to running ${((runningAt - pullingAt) / 1e6).toFixed(1)} s (journal, host-ctr's own lines)`);
  t.log(`admin's host-ctr in the journal: ${admin.join(' | ')}`);
  t.true(admin.some((message) => message.startsWith(`brl.invalid/brl/admin@${digest}: pulled`)), 'pulled through the mirror');
  t.true(admin.includes('host container admin: stopped: stopped'), 'disabling stopped the admin container');
  t.deepEqual(first.filter((entry) => /^Failed to start /.test(entry.message)).map((entry) => entry.message), []);
});
