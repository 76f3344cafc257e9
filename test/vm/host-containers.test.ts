// The dev image as a container host: both containerd instances of the containerd package
// (host-containerd for host containers, containerd for workloads) come up on their own sockets
// with the overlayfs snapshotter. The admin and control containers, pinned by digest in the dev
// defaults and enabled by user data, are pulled through a registry mirror
// (settings.container-registry) from a docker-registry on this machine that the guest reaches
// through QEMU's guestfwd, run, answer `apiclient exec`, and stop when disabled. From the admin
// container an operator pulls and runs a workload with the host's `ctr` on the workload
// containerd; the control container calls the API but sees nothing of the host's root. A host
// container whose registry refuses fails clearly and retries with growing delays while the host
// stays healthy, until it is disabled. SELinux is enforcing: host containers and the workload run
// in their own domains, and the workload cannot write a host directory the admin container reads.
import test from 'ava';
import { spawn } from 'node:child_process';
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

/** An image's pin in the dev defaults (brl.invalid/brl/NAME@sha256:…). */
function defaultSource(name: 'admin' | 'control'): string {
  const defaults = parse(readFileSync(join(repoDir, 'src/lib/host/defaults/dev/defaults.d/60-host-containers.toml'), 'utf8')) as { settings: { 'host-containers': Record<string, { source: string }> } };
  return defaults.settings['host-containers'][name]?.source ?? '';
}

/**
 * `apiclient exec TARGET CMD…` through the API bridge with stdin at end of file (as `</dev/null`
 * would, so nothing in the container waits for input): its exit code and output (exec sends the
 * command's stdout and stderr as one stream), or apiclient's own error when the session fails.
 */
async function execIn(vm: BootedVm, target: string, ...command: string[]): Promise<{ code: number; output: string }> {
  const child = spawn(join(repoDir, 'bin', 'apiclient'), ['-s', vm.apiSocket, 'exec', '-T', target, ...command], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    output += text;
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    output += text;
  });
  const code = await new Promise<number>((resolve) => child.once('close', (exitCode) => resolve(exitCode ?? -1)));
  return { code, output };
}

/** `apiclient exec admin CMD…`: its stdout, or the error when it fails. */
async function execAdmin(vm: BootedVm, ...command: string[]): Promise<{ ok: true; stdout: string } | { ok: false; error: string }> {
  const { code, output } = await execIn(vm, 'admin', ...command);
  return code === 0 ? { ok: true, stdout: output } : { ok: false, error: `exit ${code}: ${output}` };
}

/** Waits until host container NAME's status file (read through the admin container's view of the host root) says running. */
async function waitRunning(vm: BootedVm, name: string, seconds: number): Promise<{ running: boolean; lastTry: string }> {
  let lastTry = '';
  for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline; await sleep(1000)) {
    const result = await execAdmin(vm, 'cat', `/.bottlerocket/rootfs/run/host-ctr/${name}.status.json`);
    lastTry = result.ok ? result.stdout : result.error;
    if (result.ok && (JSON.parse(result.stdout) as { state: string }).state === 'running') return { running: true, lastTry };
  }
  return { running: false, lastTry };
}

/** The host's ctr on a containerd socket, run by an operator in the admin container (chroot into the host root, whose ctr matches its containerd). */
function hostCtr(vm: BootedVm, socket: string, ...args: string[]): Promise<{ code: number; output: string }> {
  return execIn(vm, 'admin', 'chroot', '/.bottlerocket/rootfs', 'ctr', '--address', socket, ...args);
}

test('containerd instances start with overlayfs on their own sockets; admin and control pinned in the defaults are pulled through a mirror, run, answer exec and stop when disabled; ctr from admin runs a workload on the workload containerd only; control calls the API without the host root; a container whose registry refuses fails clearly and retries', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-vm-host-containers-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const registry = await startRegistry();
  t.teardown(() => registry.stop());
  const digests: Record<string, string> = {};
  for (const name of ['admin', 'control'] as const) {
    const built = await brl(['container', 'build', name, '--json']);
    t.is(built.exitCode, 0, built.stderr);
    const pushed = await brl(['container', 'push', name, '--registry', `${registry.address}/brl/${name}`, '--json']);
    t.is(pushed.exitCode, 0, pushed.stderr);
    digests[name] = (JSON.parse(pushed.stdout) as { digest: string }).digest;
    t.is(defaultSource(name), `brl.invalid/brl/${name}@${digests[name]}`, `the dev defaults pin the ${name} image brl container build makes`);
  }
  const digest = digests.admin as string;
  const image = await buildDev();

  const userData = join(dir, 'user-data.toml');
  writeFileSync(userData, [
    // Nothing listens on port 9 of the guest's loopback. (A name no longer than control's: systemd
    // shortens longer unit descriptions in the console's status lines, which the test reads.)
    '[settings.host-containers.offline]',
    'enabled = true',
    'source = "127.0.0.1:9/brl/control:0.1.0"',
    '',
    '[settings.host-containers.admin]',
    'enabled = true',
    '',
    '[settings.host-containers.control]',
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
  const admin = await waitRunning(vm, 'admin', 300);
  const runningSeconds = (Date.now() - apiReadyAt) / 1000;
  t.true(admin.running, `the admin container did not run within 300 s of API ready: ${admin.lastTry}`);
  t.log(`admin container running ${runningSeconds.toFixed(1)} s after API ready (TCG, pulled through the mirror)`);
  const osRelease = await execAdmin(vm, 'cat', '/.bottlerocket/rootfs/etc/os-release');
  t.true(osRelease.ok, osRelease.ok ? '' : osRelease.error);
  const release = osRelease.ok ? osRelease.stdout : '';
  t.regex(release, /^VARIANT_ID=dev$/m, 'the host\'s release, read through the admin container');
  t.regex(release, new RegExp(`^VERSION_ID="?${image.version.replaceAll('.', '\\.')}"?$`, 'm'));

  // A workload, as an operator runs one: the host's ctr on the workload containerd pulls the
  // control image from the test registry (plain HTTP through the guestfwd) and runs a shell in it.
  const workloadRef = `10.0.2.100:${mirrorPort}/brl/control:0.1.0`;
  const workloadSocket = '/run/containerd/containerd.sock';
  const hostSocket = '/run/host-containerd/containerd.sock';
  let startedAt = Date.now();
  const pulled = await hostCtr(vm, workloadSocket, 'images', 'pull', '--plain-http', workloadRef);
  t.is(pulled.code, 0, `ctr images pull: ${pulled.output}`);
  t.log(`workload pulled by ctr on the workload containerd in ${((Date.now() - startedAt) / 1000).toFixed(1)} s (TCG)`);
  startedAt = Date.now();
  const ran = await hostCtr(vm, workloadSocket, 'run', '--rm', workloadRef, 'brl-workload', '/bin/sh', '-c', 'echo "workload says $((6 * 7)) from $(ls /usr/libexec/brl)"');
  t.log(`ctr run --rm of the workload: ${((Date.now() - startedAt) / 1000).toFixed(1)} s (TCG)`);
  t.is(ran.code, 0, `ctr run: ${ran.output}`);
  t.is(ran.output.trim(), 'workload says 42 from control-start', 'a shell of the workload image ran and its output came back through ctr');
  t.log(`workload output: ${ran.output.trim()}`);

  // SELinux enforcing (brl's policy, packages-specs/selinux-policy): the host runs unconfined,
  // the admin container as super_t, the workload as container_t. A directory the host keeps on
  // the data partition (local_t), bound into a workload, can be read there but not written, though
  // the workload is root; the admin container, through the host root, reads and writes it.
  const enforce = await execAdmin(vm, 'cat', '/.bottlerocket/rootfs/sys/fs/selinux/enforce');
  t.deepEqual(enforce, { ok: true, stdout: '1' }, 'the host enforces SELinux');
  const hostInit = await execAdmin(vm, 'cat', '/proc/1/attr/current');
  t.is(hostInit.ok ? hostInit.stdout.replace(/\0$/, '') : hostInit.error, 'system_u:system_r:system_t:s0', 'systemd left kernel_t for system_t');
  const adminLabel = await execAdmin(vm, 'cat', '/proc/self/attr/current');
  t.is(adminLabel.ok ? adminLabel.stdout.replace(/\0$/, '') : adminLabel.error, 'system_u:system_r:super_t:s0', 'the superpowered admin container runs as super_t');
  const probe = await execAdmin(vm, 'bash', '-c', 'mkdir -p /.bottlerocket/rootfs/local/brl-probe && echo host data > /.bottlerocket/rootfs/local/brl-probe/host-file');
  t.true(probe.ok, probe.ok ? '' : probe.error);
  const confined = await hostCtr(vm, workloadSocket, 'run', '--rm', '--mount', 'type=bind,src=/local/brl-probe,dst=/probe,options=rbind:rw', workloadRef, 'brl-confined', '/bin/sh', '-c',
    'cat /proc/self/attr/current; echo; cat /probe/host-file; echo workload > /probe/written; echo "host write: $?"; echo mine > /tmp/mine && echo "own write: $?"');
  t.log(`workload on a host directory: ${confined.output.trim().split('\n').join(' | ')}`);
  t.is(confined.code, 0, confined.output);
  t.regex(confined.output, /^system_u:system_r:container_t:s0\0?$/m, 'the workload runs as container_t');
  t.regex(confined.output, /^host data$/m, 'the workload reads the host directory');
  t.regex(confined.output, /cannot create \/probe\/written: Permission denied/, 'SELinux refuses the workload\'s write');
  t.regex(confined.output, /host write: 2$/m, 'sh reports the failed redirection');
  t.regex(confined.output, /^own write: 0$/m, 'the workload writes its own root');
  // Given the API socket, a workload still cannot call the API (the control container can, below).
  const apiSocketLabel = await execAdmin(vm, 'stat', '-c', '%C', '/.bottlerocket/rootfs/run/api.sock');
  t.deepEqual(apiSocketLabel, { ok: true, stdout: 'system_u:object_r:api_socket_t:s0\n' });
  const workloadApi = await hostCtr(vm, workloadSocket, 'run', '--rm', '--mount', 'type=bind,src=/run/api.sock,dst=/run/api.sock,options=rbind:rw', workloadRef, 'brl-api-probe', 'apiclient', 'get', '/settings');
  t.log(`workload given the API socket: exit ${workloadApi.code}: ${workloadApi.output.trim()}`);
  t.not(workloadApi.code, 0, 'the workload\'s API call fails');
  t.notRegex(workloadApi.output, /host-containers/, 'no settings came back');
  const afterWorkload = await execAdmin(vm, 'ls', '/.bottlerocket/rootfs/local/brl-probe');
  t.deepEqual(afterWorkload, { ok: true, stdout: 'host-file\n' }, 'nothing of the workload\'s reached the host directory; the admin container reads it');

  const workloadImages = await hostCtr(vm, workloadSocket, 'images', 'ls', '--quiet');
  t.is(workloadImages.code, 0, workloadImages.output);
  t.true(workloadImages.output.split('\n').includes(workloadRef), `the workload containerd holds the workload image: ${workloadImages.output}`);
  const workloadContainers = await hostCtr(vm, workloadSocket, 'containers', 'ls', '--quiet');
  t.false(workloadContainers.output.split('\n').includes('brl-workload'), '--rm removed the workload container');
  const hostImages = await hostCtr(vm, hostSocket, 'images', 'ls', '--quiet');
  t.is(hostImages.code, 0, hostImages.output);
  t.true(hostImages.output.split('\n').includes(`brl.invalid/brl/admin@${digest}`), `host-containerd lists the host containers' images: ${hostImages.output}`);
  t.false(hostImages.output.includes(workloadRef), 'host-containerd never saw the workload image');
  t.log(`images on the workload containerd: ${workloadImages.output.trim().split('\n').join(', ')}; on host-containerd: ${hostImages.output.trim().split('\n').join(', ')}`);

  // The control container: the API over /run/api.sock with the image's own apiclient (curl), but
  // its own PID namespace and root, without the host root or CAP_SYS_ADMIN.
  const control = await waitRunning(vm, 'control', 300);
  t.true(control.running, `the control container did not run within 300 s: ${control.lastTry}`);
  const settings = await execIn(vm, 'control', 'apiclient', 'get', '/settings');
  t.is(settings.code, 0, settings.output);
  const hostContainers = (JSON.parse(settings.output) as { 'host-containers': Record<string, { enabled: boolean; source: string }> })['host-containers'];
  t.deepEqual(hostContainers.control, { enabled: true, superpowered: false, source: `brl.invalid/brl/control@${digests.control}` }, 'control read its own settings from the host API');
  const hostRoot = await execIn(vm, 'control', 'ls', '/.bottlerocket/rootfs');
  t.not(hostRoot.code, 0, 'control has no /.bottlerocket/rootfs');
  t.regex(hostRoot.output, /No such file or directory/);
  const controlInit = await execIn(vm, 'control', 'cat', '/proc/1/cmdline');
  t.regex(controlInit.output.replaceAll('\0', ' '), /^\/bin\/sh \/usr\/libexec\/brl\/control-start $/, 'control\'s PID 1 is its own: the host\'s processes (and their roots under /proc) are out of sight');
  t.log(`control: ls /.bottlerocket/rootfs → exit ${hostRoot.code}: ${hostRoot.output.trim()}; PID 1: ${controlInit.output.replaceAll('\0', ' ').trim()}`);
  const adminInit = await execAdmin(vm, 'cat', '/proc/1/cmdline');
  t.true(adminInit.ok && !adminInit.stdout.includes('admin-start'), 'the superpowered admin container, by contrast, shares the host\'s PID 1');
  t.log(`admin's PID 1: ${adminInit.ok ? adminInit.stdout.replaceAll('\0', ' ').trim() : adminInit.error}`);
  const controlLabel = await execIn(vm, 'control', 'cat', '/proc/self/attr/current');
  t.is(controlLabel.output.replace(/\0$/, ''), 'system_u:system_r:control_t:s0', 'the control container runs confined, as control_t');
  const controlOsRelease = await execIn(vm, 'control', 'cat', '/etc/os-release');
  t.regex(controlOsRelease.output, /^ID=debian$/m, 'control\'s /etc is its image\'s, not the host\'s');
  // The image has no grep: the status is read whole.
  const procStatus = await execIn(vm, 'control', 'cat', '/proc/self/status');
  const effective = /^CapEff:\s+([0-9a-f]{16})$/m.exec(procStatus.output)?.[1];
  t.truthy(effective, procStatus.output);
  t.is(BigInt(`0x${effective ?? '0'}`) & (1n << 21n), 0n, `control lacks CAP_SYS_ADMIN (cannot mount the host's disks): CapEff ${effective}`);
  t.log(`control's effective capabilities: ${effective}`);

  // Type=notify: systemd reports "Started" only once containerd said it serves its socket.
  await vm.waitForConsole(/Started host-containerd\.service/, 1, 300);
  await vm.waitForConsole(/Started containerd\.service/, 1, 300);
  await vm.waitForConsole(/Started host-containers@offline\.service/, 1, 300);
  const status = await vm.api('GET', '/apply-status');
  t.is(status.status, 200);
  t.regex(status.body, /\/etc\/containerd\/config\.toml/, 'the workload config was rendered from its template');
  t.regex(status.body, /\/etc\/host-containers\/host-ctr\.toml/, 'host-ctr\'s registry config was rendered from settings.container-registry');
  // Long enough for a few attempts (1 s, 2 s, 4 s apart).
  await sleep(20_000);
  t.is((await vm.api('GET', '/os')).status, 200, 'the host stays healthy');
  // Container storage is data_t by the policy's name transition. An update from an image without
  // SELinux finds it unlabelled: made so here by the admin container, with the once-per-partition
  // mark removed, so the next boot's selinux-relabel-local.service labels it again.
  const snapshots = '/.bottlerocket/rootfs/local/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs';
  const labelled = await execAdmin(vm, 'stat', '-c', '%C', `${snapshots}/snapshots`);
  t.deepEqual(labelled, { ok: true, stdout: 'system_u:object_r:data_t:s0\n' }, 'containerd\'s snapshots are container storage');
  const unlabel = await execAdmin(vm, 'bash', '-c', `chcon -R -t local_t ${snapshots} && rm /.bottlerocket/rootfs/local/.brl-selinux-relabelled && stat -c %C ${snapshots}/snapshots`);
  t.deepEqual(unlabel, { ok: true, stdout: 'system_u:object_r:local_t:s0\n' });
  await vm.apiclient('set', 'host-containers.offline.enabled=false', 'host-containers.control.enabled=false', 'host-containers.admin.enabled=false');
  // The apply runs after the commit: its restart command stops the unit (host-ctr ends on SIGTERM).
  type Apply = { keys: string[] | 'all'; state: string; services: { name: string; commands: { command: string; status: string; stderr: string }[] }[] };
  let disabled: Apply | undefined;
  for (const deadline = Date.now() + 180_000; Date.now() < deadline; await sleep(1000)) {
    const applies = JSON.parse((await vm.api('GET', '/apply-status')).body) as Apply[];
    disabled = applies.find((apply) => Array.isArray(apply.keys) && apply.keys.includes('settings.host-containers.offline.enabled'));
    if (disabled !== undefined && disabled.state !== 'running') break;
  }
  t.is(disabled?.state, 'succeeded');
  const restart = disabled?.services.find((service) => service.name === 'host-containers')?.commands[0];
  t.is(restart?.status, 'ok', restart?.stderr);
  t.regex(restart?.stderr ?? '', /host-containers: offline disabled/);
  t.regex(restart?.stderr ?? '', /host-containers: control disabled/);
  t.regex(restart?.stderr ?? '', /host-containers: admin disabled/);
  let afterStop: Awaited<ReturnType<typeof execAdmin>> = { ok: true, stdout: '' };
  for (const deadline = Date.now() + 120_000; afterStop.ok && Date.now() < deadline; await sleep(1000)) afterStop = await execAdmin(vm, 'true');
  t.false(afterStop.ok, 'exec into the stopped admin container is refused');
  // A clean reboot writes the whole journal back to the data disk before the VM is stopped. The
  // next boot relabels the storage made unlabelled above, and the workload is confined again.
  await vm.reboot();
  await vm.apiclient('set', 'host-containers.admin.enabled=true');
  const adminAgain = await waitRunning(vm, 'admin', 300);
  t.true(adminAgain.running, adminAgain.lastTry);
  const relabelled = await execAdmin(vm, 'bash', '-c', `stat -c %C ${snapshots}/snapshots && ls /.bottlerocket/rootfs/local/.brl-selinux-relabelled`);
  t.deepEqual(relabelled, { ok: true, stdout: 'system_u:object_r:data_t:s0\n/.bottlerocket/rootfs/local/.brl-selinux-relabelled\n' }, 'relabelled once, and marked');
  const confinedAgain = await hostCtr(vm, workloadSocket, 'run', '--rm', workloadRef, 'brl-confined-again', 'cat', '/proc/self/attr/current');
  t.is(confinedAgain.output.replace(/\0/g, '').trim(), 'system_u:system_r:container_t:s0', `the workload is container_t again: ${confinedAgain.output}`);
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
  const offlineEntries = first.filter((entry) => entry.unit === 'host-containers@offline.service');
  const offline = offlineEntries.map((entry) => entry.message);
  t.log(`offline's host-ctr in the journal: ${offline.join(' | ')}`);
  const failedAt = offlineEntries.filter((entry) => entry.message === 'host container offline: failed: registry 127.0.0.1:9 (http://127.0.0.1:9) did not answer while reading manifest 0.1.0: ECONNREFUSED').map((entry) => entry.monotonic);
  t.true(failedAt.length >= 3, `host-ctr reported the refusal and retried: ${offline.slice(0, 8).join(' | ')}`);
  // host-ctr waits 1 s after the first failure, then twice as long each time up to 60 s.
  const gapsSeconds = failedAt.slice(1).map((at, index) => (at - (failedAt[index] as number)) / 1e6);
  t.log(`seconds between offline's failures: ${gapsSeconds.map((gap) => gap.toFixed(1)).join(', ')}`);
  gapsSeconds.forEach((gap, index) => t.true(gap >= Math.min(2 ** index, 60), `retry ${index + 1} came ${gap.toFixed(1)} s after the failure before it: growing delays, not a tight loop`));
  t.true(offline.includes('host container offline: stopped: stopped'), 'disabling stopped it');
  const controlLog = first.filter((entry) => entry.unit === 'host-containers@control.service').map((entry) => entry.message);
  t.true(controlLog.some((message) => message.startsWith(`brl.invalid/brl/control@${digests.control}: pulled`)), `control pulled through the mirror: ${controlLog.join(' | ')}`);
  t.true(controlLog.includes('host container control: stopped: stopped'), 'disabling stopped the control container');
  const adminEntries = first.filter((entry) => entry.unit === 'host-containers@admin.service');
  const adminLog = adminEntries.map((entry) => entry.message);
  const pullingAt = adminEntries.find((entry) => entry.message.startsWith('host container admin: pulling'))?.monotonic;
  const runningAt = adminEntries.find((entry) => entry.message.startsWith('host container admin: running'))?.monotonic;
  if (pullingAt !== undefined && runningAt !== undefined) t.log(`in the guest: pull through the mirror to running ${((runningAt - pullingAt) / 1e6).toFixed(1)} s (journal, host-ctr's own lines)`);
  t.log(`admin's host-ctr in the journal: ${adminLog.join(' | ')}`);
  t.true(adminLog.some((message) => message.startsWith(`brl.invalid/brl/admin@${digest}: pulled`)), 'pulled through the mirror');
  t.true(adminLog.includes('host container admin: stopped: stopped'), 'disabling stopped the admin container');
  // What the containers print reaches their unit's journal, a line each, after their name.
  t.true(adminLog.some((message) => /^admin: brl admin container .*: enter it with a shell/.test(message)), `admin's own output is in the journal: ${adminLog.join(' | ')}`);
  t.true(controlLog.some((message) => /^control( \(stderr\))?: brl control container: /.test(message)), `control's own output is in the journal: ${controlLog.join(' | ')}`);
  t.deepEqual(first.filter((entry) => /^Failed to start /.test(entry.message)).map((entry) => entry.message), []);
  // The kernel's audit record of the refused write reaches the journal.
  const denials = first.filter((entry) => /avc:\s+denied/.test(entry.message)).map((entry) => entry.message);
  t.log(`SELinux denials in the journal: ${denials.join(' | ')}`);
  t.true(denials.some((message) => /\{ [^}]*\b(write|add_name)\b[^}]* \}.*name="brl-probe".*scontext=system_u:system_r:container_t:s0 tcontext=system_u:object_r:local_t:s0 tclass=dir permissive=0/.test(message)), 'the workload\'s denied write is in the journal');
  t.true(denials.some((message) => /\{ write \}.*name="api\.sock".*scontext=system_u:system_r:container_t:s0 tcontext=system_u:object_r:api_socket_t:s0 tclass=sock_file permissive=0/.test(message)), 'the workload\'s refused connection to the API is in the journal');
  t.deepEqual(denials.filter((message) => !/scontext=system_u:system_r:container_t:s0/.test(message)), [], 'nothing of the host was denied');

});
