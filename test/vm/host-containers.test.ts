// The dev image as a container host: both containerd instances of the containerd package
// (host-containerd for host containers, containerd for workloads) come up on their own sockets
// with the overlayfs snapshotter, and a host container enabled by user data runs under host-ctr:
// its registry refuses, so host-ctr reports why in the journal and retries with growing delays
// while the host stays healthy, until the container is disabled through the API.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { devBuilder, osDiskOf } from '../helpers/dev-image.ts';
import { extractJournal, readJournal } from '../helpers/guest-journal.ts';
import { bootVm } from '../helpers/vm.ts';

const buildDev = devBuilder('vm-host-containers');

test('host-containerd and containerd start with overlayfs on their own sockets; a host container whose registry refuses fails clearly, retries, and stops when disabled', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-vm-host-containers-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const userData = join(dir, 'user-data.toml');
  // Nothing listens on port 9 of the guest's loopback.
  writeFileSync(userData, '[settings.host-containers.control]\nenabled = true\nsource = "127.0.0.1:9/brl/control:0.1.0"\n');
  const vm = await bootVm(t, { image: osDiskOf(await buildDev()), userData });
  t.log(`API ready after ${vm.readySeconds.toFixed(1)} s (TCG)`);
  // Type=notify: systemd reports "Started" only once containerd said it serves its socket.
  await vm.waitForConsole(/Started host-containerd\.service/, 1, 300);
  await vm.waitForConsole(/Started containerd\.service/, 1, 300);
  await vm.waitForConsole(/Started host-containers@control\.service/, 1, 300);
  const status = await vm.api('GET', '/apply-status');
  t.is(status.status, 200);
  t.regex(status.body, /\/etc\/containerd\/config\.toml/, 'the workload config was rendered from its template');
  // Long enough for a few attempts (1 s, 2 s, 4 s apart).
  await sleep(20_000);
  t.is((await vm.api('GET', '/os')).status, 200, 'the host stays healthy');
  await vm.apiclient('set', 'host-containers.control.enabled=false');
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
  t.deepEqual(first.filter((entry) => /^Failed to start /.test(entry.message)).map((entry) => entry.message), []);
});
