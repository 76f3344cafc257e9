// Chooses QEMU's accelerator: KVM only where it really runs guests, TCG (software emulation) otherwise.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';

export type Accelerator = 'kvm' | 'tcg';

export interface AcceleratorChoice {
  accel: Accelerator;
  /** Why, for the first line `brl vm run` prints. */
  reason: string;
}

export interface HostFacts {
  kvmDevice: boolean;
  /** The CPU advertises hardware virtualization (vmx or svm). */
  hardwareVirtualization: boolean;
  /** A paravirtual nested KVM (kvm_pvm) that cannot run firmware or normal kernels. */
  paravirtualKvm: boolean;
}

export function readHostFacts(): HostFacts {
  let kvmDevice = false;
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    kvmDevice = true;
  } catch {
    // absent or not ours to use
  }
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // not Linux: no KVM either
  }
  return {
    kvmDevice,
    hardwareVirtualization: /^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo),
    paravirtualKvm: existsSync('/sys/module/kvm_pvm'),
  };
}

/** `auto` takes KVM only when the device is usable, the CPU can virtualize and the KVM is not paravirtual. */
export function chooseAccelerator(requested: Accelerator | 'auto', facts: HostFacts = readHostFacts()): AcceleratorChoice {
  if (requested === 'tcg') return { accel: 'tcg', reason: 'TCG (software emulation) as asked' };
  const obstacle = !facts.kvmDevice
    ? '/dev/kvm is not available'
    : facts.paravirtualKvm
      ? '/dev/kvm is a paravirtual nested KVM (kvm_pvm) that cannot run firmware'
      : !facts.hardwareVirtualization
        ? 'the CPU advertises no vmx/svm'
        : undefined;
  if (obstacle === undefined) return { accel: 'kvm', reason: 'KVM' };
  if (requested === 'kvm') return { accel: 'kvm', reason: `KVM as asked, although ${obstacle}` };
  return { accel: 'tcg', reason: `TCG (software emulation): ${obstacle}` };
}
