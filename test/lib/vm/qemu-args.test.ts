import test from 'ava';
import { existsSync } from 'node:fs';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { chooseAccelerator } from '../../../src/lib/vm/accel.ts';
import { firmwareFiles } from '../../../src/lib/vm/firmware.ts';
import { kernelArch } from '../../../src/lib/vm/image.ts';
import { API_BRIDGE_PORT } from '../../../src/lib/host/api-bridge/protocol.ts';
import { forwardRelayPath, parseForward, qemuArgs, USER_DATA_FW_CFG, type QemuPlan } from '../../../src/lib/vm/qemu-args.ts';

const plan: QemuPlan = {
  name: 'dev',
  arch: 'x86_64',
  accel: 'tcg',
  firmware: { firmware: 'uefi', code: '/fw/CODE.fd', varsTemplate: '/fw/VARS.fd', secureBoot: false },
  varsPath: '/state/OVMF_VARS.fd',
  memoryMiB: 1024,
  cpus: 2,
  osDisk: { path: '/state/os.qcow2', format: 'qcow2' },
  console: { kind: 'file', path: '/state/console.log' },
  forwards: [],
};

function option(args: string[], flag: string): string[] {
  return args.flatMap((arg, index) => (args[index - 1] === flag ? [arg] : []));
}

test('the network is user mode with restrict=on, and forwards only reach 127.0.0.1 ports that were named', (t) => {
  const none = qemuArgs(plan);
  t.deepEqual(option(none, '-netdev'), ['user,id=net0,restrict=on']);
  const forwarded = qemuArgs({ ...plan, forwards: [{ guestPort: 8080, hostPort: 8080 }, { guestPort: 5000, hostPort: 41234 }] });
  t.deepEqual(option(forwarded, '-netdev'), [
    `user,id=net0,restrict=on,guestfwd=tcp:10.0.2.100:8080-cmd:${process.execPath} ${forwardRelayPath} 8080,guestfwd=tcp:10.0.2.100:5000-cmd:${process.execPath} ${forwardRelayPath} 41234`,
  ]);
  t.false(forwarded.some((arg) => arg.includes('hostfwd')), 'nothing on the host reaches into the guest');
});

test('UEFI boots OVMF code read-only with the VM\'s own VARS; BIOS boots SeaBIOS', (t) => {
  const uefi = option(qemuArgs(plan), '-drive');
  t.true(uefi.includes('if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd'));
  t.true(uefi.includes('if=pflash,format=raw,unit=1,file=/state/OVMF_VARS.fd'));
  const bios = qemuArgs({ ...plan, firmware: { firmware: 'bios', code: '/fw/bios-256k.bin', secureBoot: false } });
  t.deepEqual(option(bios, '-bios'), ['/fw/bios-256k.bin']);
  t.false(option(bios, '-drive').some((drive) => drive.includes('pflash')));
});

test('Secure Boot firmware gets SMM and a secure flash, which OVMF\'s secboot build needs to keep its variables from the OS', (t) => {
  t.deepEqual(option(qemuArgs(plan), '-machine'), ['q35,accel=tcg']);
  t.deepEqual(option(qemuArgs(plan), '-global'), []);
  const secure = qemuArgs({ ...plan, firmware: { ...plan.firmware, code: '/fw/CODE.secboot.fd', secureBoot: true } });
  t.deepEqual(option(secure, '-machine'), ['q35,smm=on,accel=tcg']);
  t.deepEqual(option(secure, '-global'), ['driver=cfi.pflash01,property=secure,value=on']);
  t.true(option(secure, '-drive').includes('if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.secboot.fd'));
});

test('the data disk, user data and API bridge appear only when given', (t) => {
  const bare = qemuArgs(plan);
  t.is(option(bare, '-fw_cfg').length, 0);
  t.false(bare.some((arg) => arg.includes('virtserialport')));
  t.is(option(bare, '-device').filter((device) => device.startsWith('virtio-blk-pci')).length, 1);
  const full = qemuArgs({ ...plan, dataDisk: { path: '/state/data.qcow2', format: 'qcow2' }, userData: '/u.toml', bridgeChannel: '/state/bridge.sock' });
  t.deepEqual(option(full, '-fw_cfg'), [`name=${USER_DATA_FW_CFG},file=/u.toml`]);
  t.true(option(full, '-device').includes(`virtserialport,bus=vserial.0,chardev=bridge,name=${API_BRIDGE_PORT}`));
  t.true(option(full, '-chardev').includes('socket,id=bridge,path=/state/bridge.sock'));
  t.true(option(full, '-drive').includes('if=none,id=data,format=qcow2,file=/state/data.qcow2'));
});

test('the console goes to the terminal with a log copy, or to a file only', (t) => {
  t.deepEqual(option(qemuArgs(plan), '-chardev'), ['file,id=console,path=/state/console.log']);
  t.deepEqual(option(qemuArgs({ ...plan, console: { kind: 'stdio', logFile: '/state/console.log' } }), '-chardev'), ['stdio,id=console,logfile=/state/console.log']);
});

test('--forward takes GUESTPORT or GUESTPORT:HOSTPORT and nothing else', (t) => {
  t.deepEqual(parseForward('8080'), { guestPort: 8080, hostPort: 8080 });
  t.deepEqual(parseForward('80:18080'), { guestPort: 80, hostPort: 18080 });
  for (const bad of ['', '0', '70000', '1.2.3.4:80', 'http', '80:', ':80']) t.is(parseForward(bad), undefined, bad);
});

test('auto takes KVM only with a usable, non-paravirtual KVM on a CPU that virtualizes', (t) => {
  const good = { kvmDevice: true, hardwareVirtualization: true, paravirtualKvm: false };
  t.is(chooseAccelerator('auto', good).accel, 'kvm');
  t.deepEqual(chooseAccelerator('auto', { ...good, paravirtualKvm: true }), { accel: 'tcg', reason: 'TCG (software emulation): /dev/kvm is a paravirtual nested KVM (kvm_pvm) that cannot run firmware' });
  t.is(chooseAccelerator('auto', { ...good, kvmDevice: false }).accel, 'tcg');
  t.is(chooseAccelerator('auto', { ...good, hardwareVirtualization: false }).accel, 'tcg');
  t.is(chooseAccelerator('tcg', good).accel, 'tcg');
  t.regex(chooseAccelerator('kvm', { ...good, kvmDevice: false }).reason, /KVM as asked, although/);
});

test('the kernel\'s own header tells x86_64 from aarch64', (t) => {
  const x86 = Buffer.alloc(0x300);
  x86.write('HdrS', 0x202, 'latin1');
  const arm = Buffer.alloc(0x100);
  arm.write('ARM\x64', 0x38, 'latin1');
  t.is(kernelArch(x86), 'x86_64');
  t.is(kernelArch(arm), 'aarch64');
  t.is(kernelArch(Buffer.alloc(0x300)), undefined);
});

test('aarch64 runs on the virt machine with AAVMF in both flash banks and the same virtio-pci devices as x86_64', (t) => {
  const firmware = firmwareFiles('uefi', {}, false, 'aarch64');
  t.deepEqual(firmware, { firmware: 'uefi', code: '/usr/share/AAVMF/AAVMF_CODE.fd', varsTemplate: '/usr/share/AAVMF/AAVMF_VARS.fd', secureBoot: false });
  const arm = qemuArgs({ ...plan, arch: 'aarch64', firmware, bridgeChannel: '/state/bridge.sock' });
  t.deepEqual(option(arm, '-machine'), ['virt,accel=tcg']);
  t.deepEqual(option(arm, '-cpu'), ['max,pauth-impdef=on']);
  t.deepEqual(option(qemuArgs({ ...plan, arch: 'aarch64', firmware, accel: 'kvm' }), '-cpu'), ['host']);
  t.true(option(arm, '-drive').includes('if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd'));
  t.true(option(arm, '-drive').includes('if=pflash,format=raw,unit=1,file=/state/OVMF_VARS.fd'));
  t.deepEqual(option(arm, '-device'), option(qemuArgs({ ...plan, bridgeChannel: '/state/bridge.sock' }), '-device'));
});

test('aarch64 VMs refuse BIOS and Secure Boot firmware, saying what to drop', (t) => {
  t.true(existsSync('/usr/share/AAVMF/AAVMF_CODE.fd'), 'qemu-efi-aarch64 is installed (npm run host-tools)');
  const bios = t.throws(() => firmwareFiles('bios', {}, false, 'aarch64'), { instanceOf: BrlError });
  t.regex(bios?.message ?? '', /aarch64 VMs boot with AAVMF's UEFI without Secure Boot only, not --firmware bios/);
  const secure = t.throws(() => firmwareFiles('uefi', {}, true, 'aarch64'), { instanceOf: BrlError });
  t.regex(secure?.message ?? '', /not --secure-boot/);
  const missing = t.throws(() => firmwareFiles('uefi', { aavmf: '/nonexistent/AAVMF' }, false, 'aarch64'), { instanceOf: BrlError });
  t.regex(missing?.message ?? '', /\/nonexistent\/AAVMF\/AAVMF_CODE\.fd is missing/);
  t.regex(missing?.hint ?? '', /apt-get install qemu-efi-aarch64/);
});
