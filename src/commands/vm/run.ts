import { Args, Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { BrlError, ExitCode } from '../../lib/core/errors.ts';
import { buildDir, findProjectDir } from '../../lib/core/paths.ts';
import { firmwareCertificatesFor } from '../../lib/secure-boot/settings.ts';
import { parseForward, type Forward } from '../../lib/vm/qemu-args.ts';
import { runVm, type VmRunResult } from '../../lib/vm/run.ts';
import type { Architecture } from '../../lib/variant/definition.ts';

export default class VmRun extends BrlCommand<VmRunResult> {
  static override description =
    'Boot a built image in QEMU on a copy-on-write overlay: UEFI or BIOS, KVM where it really works and TCG otherwise, user data through fw_cfg, no network but the forwards you name, and (for variants with the api-bridge feature) the guest API as a Unix socket on the host.';
  static override examples = [
    '<%= config.bin %> vm run dev',
    '<%= config.bin %> vm run dev --firmware bios --console-log build/dev-console.log --timeout 120',
    '<%= config.bin %> vm run dev --secure-boot-keys keys/secure-boot --wait-ready',
    '<%= config.bin %> vm run dev --wait-ready --json --user-data user-data.toml --forward 8080',
    '<%= config.bin %> vm run dev --arch aarch64 --wait-ready',
    '<%= config.bin %> vm run --image build/images/x86_64-dev/latest/bottlerocket-dev-x86_64.img.lz4',
  ];
  static override args = {
    variant: Args.string({ description: 'variant whose latest build to boot (build/images/<arch>-<variant>/latest)' }),
  };
  static override flags = {
    image: Flags.string({ description: 'OS disk image to boot instead of a variant\'s latest build (.img.lz4, raw or qcow2)' }),
    arch: Flags.string({ description: 'architecture of the image', options: ['x86_64', 'aarch64'] }),
    firmware: Flags.string({ description: 'UEFI (OVMF; AAVMF on aarch64) or BIOS (SeaBIOS, x86_64 only)', options: ['uefi', 'bios'], default: 'uefi' }),
    accel: Flags.string({ description: 'accelerator; auto takes KVM only where it can run firmware', options: ['auto', 'kvm', 'tcg'], default: 'auto' }),
    memory: Flags.integer({ description: 'guest memory in MiB', default: 1024, min: 256 }),
    cpus: Flags.integer({ description: 'guest CPUs', default: 2, min: 1, max: 64 }),
    persist: Flags.boolean({ description: 'keep the VM\'s disk changes across runs (the built image is never written either way)', default: false }),
    'state-dir': Flags.string({ description: 'directory for the VM\'s overlays, firmware variables, sockets and logs (default build/vm/<name>)' }),
    'console-log': Flags.string({ description: 'write the serial console to this file instead of the terminal' }),
    'user-data': Flags.string({ description: 'TOML user data for the guest, passed through QEMU fw_cfg' }),
    forward: Flags.string({ description: 'let the guest reach 127.0.0.1:HOSTPORT as 10.0.2.100:GUESTPORT (GUESTPORT[:HOSTPORT]); repeatable', multiple: true, default: [] }),
    'api-socket': Flags.string({ description: 'host path of the guest API socket (default <state-dir>/api.sock)' }),
    timeout: Flags.integer({ description: 'stop the VM after this many seconds (with --wait-ready: the time allowed to reach API ready, default 300)', min: 1 }),
    'secure-boot': Flags.boolean({ description: 'boot OVMF\'s Secure Boot build with the project\'s PK, KEK and db enrolled ([secure-boot] keys-dir in brl.toml, or --secure-boot-keys)', default: false }),
    'secure-boot-keys': Flags.string({ description: 'key set directory whose PK.crt, KEK.crt and db.crt the firmware enrolls (implies --secure-boot)' }),
    'wait-ready': Flags.boolean({ description: 'run the VM in the background and return once its boot has finished and its API answers', default: false }),
  };

  async run(): Promise<VmRunResult> {
    const { args, flags } = await this.parse(VmRun);
    const forwards: Forward[] = flags.forward.map((text) => {
      const forward = parseForward(text);
      if (forward === undefined) {
        throw new BrlError(`--forward ${text} is not GUESTPORT or GUESTPORT:HOSTPORT`, { exitCode: ExitCode.usage, code: 'USAGE' });
      }
      return forward;
    });
    const projectDir = args.variant === undefined ? process.cwd() : findProjectDir();
    const secureBoot = flags['secure-boot'] || flags['secure-boot-keys'] !== undefined ? await firmwareCertificatesFor(projectDir, flags['secure-boot-keys']) : undefined;
    const result = await runVm({
      buildDir: buildDir(projectDir),
      ...(args.variant === undefined ? {} : { variant: args.variant }),
      ...(flags.image === undefined ? {} : { image: flags.image }),
      ...(flags.arch === undefined ? {} : { arch: flags.arch as Architecture }),
      firmware: flags.firmware as 'uefi' | 'bios',
      ...(secureBoot === undefined ? {} : { secureBoot }),
      accel: flags.accel as 'auto' | 'kvm' | 'tcg',
      memoryMiB: flags.memory,
      cpus: flags.cpus,
      persist: flags.persist,
      ...(flags['state-dir'] === undefined ? {} : { stateDir: flags['state-dir'] }),
      ...(flags['console-log'] === undefined ? {} : { consoleLog: flags['console-log'] }),
      quietConsole: this.jsonEnabled(),
      ...(flags['user-data'] === undefined ? {} : { userData: flags['user-data'] }),
      forwards,
      ...(flags['api-socket'] === undefined ? {} : { apiSocket: flags['api-socket'] }),
      ...(flags.timeout === undefined ? {} : { timeoutSeconds: flags.timeout }),
      waitReady: flags['wait-ready'],
      say: (line) => this.jsonEnabled() || process.stderr.write(`${line}\n`),
    });
    if (result.readySeconds !== undefined) {
      this.say(`API ready after ${result.readySeconds.toFixed(1)} s: apiclient -s ${result.apiSocket}`);
      this.say(`stop with: kill ${result.pid}; console: ${result.consoleLog}`);
    }
    return result;
  }
}
