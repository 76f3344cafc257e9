// Benchmark: QEMU start to a boot milestone of the dev image (firmware → GRUB → kernel → verity-init
// → …), beside the same firmware booting the same kernel straight into an init that exits at once
// (QEMU's -kernel), as a ratio.
// The default milestone is API ready: the guest starts its API bridge after multi-user.target, once
// the boot units have run (user data, settings rendered, the boot marked successful).
// Run: npm run build && ./bin/brl build variant dev && flock /tmp/brl-bench.lock node bench/boot.ts [--runs 3] [--marker REGEX] [--firmware bios]
//      [--image PATH] (another build's OS disk, e.g. to compare two commits in one sitting)
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { prepareVm } from '../src/lib/vm/run.ts';
import { writeCpio } from '../src/lib/variant/cpio.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, marker: { type: 'string', default: 'Started api-bridge\\.service' }, firmware: { type: 'string', default: 'uefi' }, image: { type: 'string' } } });
const runs = Number(values.runs);
const marker = new RegExp(values.marker);
const repoDir = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'brl-bench-boot-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

interface Sample {
  seconds: number;
  /** QEMU's resident memory when the marker appeared: guest pages touched plus QEMU's own. */
  rssMiB: number;
}

/** NaN when QEMU has already exited (the baseline's init powers off at once). */
function rssMiB(pid: number | undefined): number {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return Number.NaN;
  }
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? Number.NaN) / 1024;
}

/** Seconds from spawning QEMU to the first console line matching `pattern`. */
async function timeToMarker(qemu: string, args: string[], consoleLog: string, pattern: RegExp, limitSeconds = 300): Promise<Sample> {
  rmSync(consoleLog, { force: true });
  const started = performance.now();
  const child = spawn(qemu, args, { stdio: 'ignore' });
  try {
    for (;;) {
      const text = existsSync(consoleLog) ? readFileSync(consoleLog, 'latin1') : '';
      if (pattern.test(text)) return { seconds: (performance.now() - started) / 1000, rssMiB: rssMiB(child.pid) };
      if (child.exitCode !== null) throw new Error(`QEMU exited (${child.exitCode}) before ${pattern} appeared on the console`);
      if ((performance.now() - started) / 1000 > limitSeconds) throw new Error(`no ${pattern} on the console within ${limitSeconds} s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    child.kill('SIGKILL');
  }
}

const median = (samples: number[]) => [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)] as number;

const spec = await prepareVm({
  buildDir: join(repoDir, 'build'), variant: 'dev', firmware: values.firmware as 'uefi' | 'bios', accel: 'auto', memoryMiB: 1024, cpus: 2,
  ...(values.image === undefined ? {} : { image: values.image }),
  persist: false, stateDir: join(dir, 'vm'), consoleLog: join(dir, 'dev.log'), quietConsole: true, forwards: [], waitReady: false, say: () => undefined,
});

// The baseline: the image's own kernel, no firmware boot loader, an initramfs whose /init prints and powers off.
const bootFs = join(dir, 'boot.ext4');
const osImage = join(spec.stateDir, 'os.base.img');
const inspected = JSON.parse(execFileSync(join(repoDir, 'bin', 'brl'), ['image', 'inspect', osImage, '--json']).toString()) as { partitions: Array<{ role: string; offsetBytes: number; sizeBytes: number }> };
const bootA = inspected.partitions.find((partition) => partition.role === 'BOOT-A');
if (bootA === undefined) throw new Error('no BOOT-A');
execFileSync('dd', [`if=${osImage}`, `of=${bootFs}`, 'bs=1M', `skip=${bootA.offsetBytes / 1048576}`, `count=${bootA.sizeBytes / 1048576}`, 'status=none']);
execFileSync('debugfs', ['-R', `dump /vmlinuz ${join(dir, 'vmlinuz')}`, bootFs], { stdio: 'ignore' });
writeFileSync(join(dir, 'init.c'), '#include <unistd.h>\n#include <sys/reboot.h>\nint main(void) { write(1, "bare-init: up\\n", 14); reboot(RB_POWER_OFF); return 0; }\n');
execFileSync('gcc', ['-O2', '-static', '-o', join(dir, 'init'), join(dir, 'init.c')]);
writeFileSync(join(dir, 'bare.cpio'), writeCpio([
  { kind: 'dir', path: 'dev', mode: 0o755 },
  { kind: 'char', path: 'dev/console', mode: 0o600, major: 5, minor: 1 },
  { kind: 'file', path: 'init', mode: 0o755, data: readFileSync(join(dir, 'init')) },
], 0));
const bareLog = join(dir, 'bare.log');
const accel = spec.args[spec.args.indexOf('-machine') + 1] ?? 'q35,accel=tcg';
// The same firmware as the image's boot, so the ratio is what GRUB, the initramfs and the host add.
const firmwareArgs = spec.args.flatMap((arg, index) => (spec.args[index - 1] === '-bios' || (spec.args[index - 1] === '-drive' && arg.startsWith('if=pflash')) ? [spec.args[index - 1] as string, arg] : []));
const bareArgs = ['-machine', accel, '-cpu', 'max', '-smp', '2', '-m', '1024', '-nodefaults', '-no-user-config', '-display', 'none', ...firmwareArgs,
  '-kernel', join(dir, 'vmlinuz'), '-initrd', join(dir, 'bare.cpio'), '-append', 'console=ttyS0', '-chardev', `file,id=console,path=${bareLog}`, '-serial', 'chardev:console'];

// QEMU connects the API bridge's serial port to this socket, as under brl vm run.
const bridge = createServer(() => undefined);
if (spec.bridgeChannel !== undefined) await new Promise<void>((resolve) => bridge.listen(spec.bridgeChannel, resolve));

const full: Sample[] = [];
const bare: Sample[] = [];
for (let run = 0; run < runs; run++) {
  bare.push(await timeToMarker(spec.qemu, bareArgs, bareLog, /bare-init: up/));
  full.push(await timeToMarker(spec.qemu, spec.args, spec.consoleLog, marker));
}
const result = {
  accel: spec.result.accelReason,
  firmware: values.firmware,
  marker: values.marker,
  runs,
  bareKernelToInitSeconds: Number(median(bare.map((sample) => sample.seconds)).toFixed(2)),
  imageToMarkerSeconds: Number(median(full.map((sample) => sample.seconds)).toFixed(2)),
  ratio: Number((median(full.map((sample) => sample.seconds)) / median(bare.map((sample) => sample.seconds))).toFixed(2)),
  qemuRssAtMarkerMiB: Number(median(full.map((sample) => sample.rssMiB)).toFixed(0)),
  bareQemuRssMiB: Number(median(bare.map((sample) => sample.rssMiB)).toFixed(0)),
  osDiskCompressedMiB: Number((statSync(join(repoDir, 'build/images/x86_64-dev/latest/bottlerocket-dev-x86_64.img.lz4')).size / 1048576).toFixed(1)),
  guestMemoryMiB: 1024,
  loadAverage: loadavg()[0]?.toFixed(1),
};
console.log(JSON.stringify(result, null, 2));
bridge.close();
