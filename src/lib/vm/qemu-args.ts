// QEMU's command line for a brl VM, as a pure function of the plan, so every choice is testable
// without starting QEMU.
import { fileURLToPath } from 'node:url';
import { API_BRIDGE_PORT } from '../host/api-bridge/protocol.ts';
import type { Architecture } from '../variant/definition.ts';
import type { Accelerator } from './accel.ts';
import type { FirmwareFiles } from './firmware.ts';

/** The guest reaches `guestAddress:guestPort`, QEMU connects it to 127.0.0.1:hostPort. */
export interface Forward {
  guestPort: number;
  hostPort: number;
}

/** Where forwarded host services appear inside the guest (QEMU user networking's 10.0.2.0/24). */
export const GUEST_FORWARD_ADDRESS = '10.0.2.100';
/** The per-connection relay QEMU runs for each forward (the .ts source under the tests). */
export const forwardRelayPath = fileURLToPath(new URL(`./forward-relay${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));
/** fw_cfg file that early-boot-config reads as one more user-data source. */
export const USER_DATA_FW_CFG = 'opt/org.brl/user-data';

export interface QemuPlan {
  name: string;
  /** The guest's arch: q35 for x86_64, virt for aarch64 (qemu-system-<arch>). */
  arch: Architecture;
  accel: Accelerator;
  firmware: FirmwareFiles;
  /** The VM's own UEFI variable store. */
  varsPath?: string;
  memoryMiB: number;
  cpus: number;
  osDisk: { path: string; format: 'raw' | 'qcow2' };
  dataDisk?: { path: string; format: 'raw' | 'qcow2' };
  /** The serial console: the terminal (logged to a file too) or a file only. */
  console: { kind: 'stdio'; logFile: string } | { kind: 'file'; path: string };
  userData?: string;
  forwards: readonly Forward[];
  /** Unix socket that QEMU connects the API bridge's serial port to. */
  bridgeChannel?: string;
}

/** The emulator binary for a guest arch. */
export function qemuSystemCommand(arch: Architecture): string {
  return `qemu-system-${arch}`;
}

/**
 * The machine and CPU: x86_64 is q35 (OVMF's Secure Boot build guards its variables with SMM:
 * without it, the OS could rewrite db); aarch64 is virt, whose PCIe bus takes the same virtio-pci
 * devices. Under TCG aarch64 emulates `max` with pauth-impdef: Debian's arm64 kernel signs its
 * return addresses (CONFIG_ARM64_PTR_AUTH_KERNEL), and QEMU's own pointer-authentication hash is
 * cheaper to emulate than the architected QARMA (QEMU's Arm CPU feature documentation).
 */
function machineArgs(plan: QemuPlan): string[] {
  if (plan.arch === 'aarch64') {
    return ['-machine', `virt,accel=${plan.accel}`, '-cpu', plan.accel === 'kvm' ? 'host' : 'max,pauth-impdef=on'];
  }
  return ['-machine', `q35,${plan.firmware.secureBoot ? 'smm=on,' : ''}accel=${plan.accel}`, '-cpu', plan.accel === 'kvm' ? 'host' : 'max'];
}

export function qemuArgs(plan: QemuPlan): string[] {
  const args = [
    '-name', `brl-${plan.name}`,
    ...machineArgs(plan),
    '-smp', String(plan.cpus),
    '-m', String(plan.memoryMiB),
    '-nodefaults', '-no-user-config', '-display', 'none',
  ];
  if (plan.firmware.firmware === 'uefi') {
    if (plan.firmware.secureBoot) args.push('-global', 'driver=cfi.pflash01,property=secure,value=on');
    args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${plan.firmware.code}`);
    if (plan.varsPath !== undefined) args.push('-drive', `if=pflash,format=raw,unit=1,file=${plan.varsPath}`);
  } else {
    args.push('-bios', plan.firmware.code);
  }
  args.push('-drive', `if=none,id=os,format=${plan.osDisk.format},file=${plan.osDisk.path}`, '-device', 'virtio-blk-pci,drive=os,bootindex=1');
  if (plan.dataDisk !== undefined) {
    args.push('-drive', `if=none,id=data,format=${plan.dataDisk.format},file=${plan.dataDisk.path}`, '-device', 'virtio-blk-pci,drive=data');
  }
  if (plan.console.kind === 'stdio') args.push('-chardev', `stdio,id=console,logfile=${plan.console.logFile}`);
  else args.push('-chardev', `file,id=console,path=${plan.console.path}`);
  args.push('-serial', 'chardev:console');
  if (plan.userData !== undefined) args.push('-fw_cfg', `name=${USER_DATA_FW_CFG},file=${plan.userData}`);
  // restrict=on: no route out, no host services but the forwards named here. Each guest connection
  // gets its own relay process to 127.0.0.1 (QEMU option values double their commas).
  const relay = (port: number) => `${process.execPath} ${forwardRelayPath} ${port}`.replaceAll(',', ',,');
  const forwards = plan.forwards.map((forward) => `,guestfwd=tcp:${GUEST_FORWARD_ADDRESS}:${forward.guestPort}-cmd:${relay(forward.hostPort)}`);
  args.push('-netdev', `user,id=net0,restrict=on${forwards.join('')}`, '-device', 'virtio-net-pci,netdev=net0');
  if (plan.bridgeChannel !== undefined) {
    args.push(
      '-device', 'virtio-serial-pci,id=vserial',
      '-chardev', `socket,id=bridge,path=${plan.bridgeChannel}`,
      '-device', `virtserialport,bus=vserial.0,chardev=bridge,name=${API_BRIDGE_PORT}`,
    );
  }
  return args;
}

/** `8080` or `8080:18080` (guest port : host port). */
export function parseForward(text: string): Forward | undefined {
  const match = /^(\d{1,5})(?::(\d{1,5}))?$/.exec(text);
  if (!match) return undefined;
  const guestPort = Number(match[1]);
  const hostPort = Number(match[2] ?? match[1]);
  if (guestPort < 1 || guestPort > 65535 || hostPort < 1 || hostPort > 65535) return undefined;
  return { guestPort, hostPort };
}
