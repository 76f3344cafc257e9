import test from 'ava';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectBootconfig, encodeBootconfig } from '../../../src/lib/variant/bootconfig.ts';
import { kernelCommandLine, renderGrubConfig } from '../../../src/lib/variant/grub.ts';
import { bottlerocketVerityTable, verityTableOfGrubConfig } from '../../../src/lib/image/verity-table.ts';
import { renderOvf } from '../../../src/lib/variant/ova.ts';

test('bootconfig snippets merge into bytewise-sorted key = value lines', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-bootconfig-'));
  writeFileSync(join(dir, '10-b.conf'), 'kernel.b = 2\n# comment\n\n');
  writeFileSync(join(dir, '05-a.conf'), 'kernel.a = 1\ninit.Z = x\n');
  t.is(await collectBootconfig(dir), 'init.Z = x\nkernel.a = 1\nkernel.b = 2\n');
  t.is(await collectBootconfig(join(dir, 'missing')), 'kernel {}\ninit {}\n');
  writeFileSync(join(dir, '20-bad.conf'), 'kernel {\n');
  await t.throwsAsync(collectBootconfig(dir), { message: /20-bad\.conf:1: bootconfig snippets hold single-line/ });
});

test('bootconfig data is framed as the kernel expects: NUL, padding, size, checksum, magic', (t) => {
  const data = encodeBootconfig('kernel {}\ninit {}\n');
  const text = Buffer.from('kernel {}\ninit {}\n\0');
  t.is(data.subarray(-12).toString('latin1'), '#BOOTCONFIG\n');
  const size = data.readUInt32LE(data.length - 20);
  const checksum = data.readUInt32LE(data.length - 16);
  t.is(size, data.length - 20);
  t.is(size % 4, 0);
  t.deepEqual(data.subarray(0, text.length), text);
  t.true(data.subarray(text.length, size).every((byte) => byte === 0));
  t.is(checksum, [...data.subarray(0, size)].reduce((sum, byte) => sum + byte, 0));
});

test('grub.cfg carries the dm-verity table (parsed back to the same model) and the command line in upstream order', (t) => {
  const table = bottlerocketVerityTable({ dataBlocks: 1000, rootHash: 'ab'.repeat(32), salt: 'cd'.repeat(32) });
  const config = renderGrubConfig({ prettyName: 'Bottlerocket OS', versionId: '1.2.3', kernelParameters: ['console=tty0', 'quiet'], dmVerityTable: table });
  t.is(config, [
    'set default="0"',
    'set fallback="1"',
    'set timeout="0"',
    `set dm_verity_root="root,,,ro,0 8000 verity 1 PARTUUID=$boot_uuid/PARTNROFF=1 PARTUUID=$boot_uuid/PARTNROFF=2 4096 4096 1000 1 sha256 ${'ab'.repeat(32)} ${'cd'.repeat(32)} 2 restart_on_corruption ignore_zero_blocks"`,
    '',
    'menuentry "Bottlerocket OS 1.2.3" --unrestricted {',
    '   linux ($root)/vmlinuz console=tty0 quiet bootconfig root=/dev/dm-0 rootwait ro raid=noautodetect random.trust_cpu=on selinux=1 enforcing=1 dm-mod.create="$dm_verity_root" -- systemd.log_target=journal-or-kmsg systemd.log_color=0 systemd.show_status=true',
    '   initrd ($private)/bootconfig.data',
    '   boot',
    '}',
    '',
    'menuentry "Reboot: this bank did not boot" --unrestricted {',
    '   echo "brl: this bank\'s kernel did not boot; rebooting in 10 s"',
    '   sleep 10',
    '   reboot',
    '}',
    '',
  ].join('\n'));
  t.deepEqual(verityTableOfGrubConfig(config, 'grub.cfg'), table);
  t.true(kernelCommandLine([]).startsWith('bootconfig root=/dev/dm-0 '));
});

test('with an initramfs GRUB loads BOOT\'s initrd.img; a kernel without CONFIG_BOOT_CONFIG gets no bootconfig initrd or word', (t) => {
  const table = bottlerocketVerityTable({ dataBlocks: 1000, rootHash: 'ab'.repeat(32), salt: 'cd'.repeat(32) });
  const input = { prettyName: 'Bottlerocket OS', versionId: '1.2.3', kernelParameters: ['console=tty0'], dmVerityTable: table };
  const lines = (initrd: { initramfs: boolean; bootconfig: boolean }) => renderGrubConfig({ ...input, initrd }).split('\n').filter((line) => /^ {3}(linux|initrd)/.test(line));
  t.deepEqual(lines({ initramfs: true, bootconfig: true }).map((line) => line.trim().split(' ').slice(0, 4).join(' ')), ['linux ($root)/vmlinuz console=tty0 bootconfig', 'initrd ($root)/initrd.img ($private)/bootconfig.data']);
  const debian = lines({ initramfs: true, bootconfig: false });
  t.is(debian[1], '   initrd ($root)/initrd.img');
  t.false((debian[0] ?? '').includes(' bootconfig '));
  t.deepEqual(lines({ initramfs: false, bootconfig: false }).length, 1, 'no initrd line at all');
});

test('the bootconfig snippet directory may be absent', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-bootconfig-empty-'));
  mkdirSync(join(dir, 'boot-config.d'));
  t.is(await collectBootconfig(join(dir, 'boot-config.d')), 'kernel {}\ninit {}\n');
});

test('an OVF template is filled, and leftover or inapplicable placeholders are errors', (t) => {
  const input = { osVmdk: '/out/P.vmdk', dataVmdk: '/out/P-data.vmdk', osDiskBytes: 2, dataDiskBytes: 20 };
  const xml = (body: string) => `<Envelope>${body}</Envelope>`;
  t.is(renderOvf(xml('{{OS_DISK}} {{OS_DISK_BYTES}} {{DATA_DISK}} {{DATA_DISK_BYTES}}'), input, 't.ovf'), xml('P.vmdk 2 P-data.vmdk 20'));
  t.throws(() => renderOvf(xml('{{OS_DISK}} {{DATA_DISK}}'), { ...input, dataVmdk: undefined, dataDiskBytes: undefined }, 't.ovf'), { message: /unified partition plan has no data disk/ });
  t.throws(() => renderOvf(xml('{{OS_DISK}} {{PK_CERT_DER_HEX}}'), input, 't.ovf'), { message: /t\.ovf: placeholder \{\{PK_CERT_DER_HEX\}\} is left/ });
  t.throws(() => renderOvf(xml('{{OS_DISK}} }}'), input, 't.ovf'), { message: /placeholder \}\} is left/ });
});

test('an OVF template that is not well-formed XML is refused with its line and column', (t) => {
  const input = { osVmdk: '/out/P.vmdk', dataVmdk: undefined, osDiskBytes: 2, dataDiskBytes: undefined };
  const template = '<?xml version="1.0"?>\n<Envelope>\n  <File ovf:href="{{OS_DISK}}"/>\n  <Disk></Dsk>\n</Envelope>\n';
  const error = t.throws(() => renderOvf(template, input, 'variants/v/template.ovf'));
  t.regex(error?.message ?? '', /^variants\/v\/template\.ovf:4:\d+: not well-formed XML: .*Disk/);
  t.like(error, { code: 'BAD_OVF_TEMPLATE' });
  t.throws(() => renderOvf('<Envelope><File href="{{OS_DISK}}">', input, 't.ovf'), { message: /^t\.ovf:1:\d+: not well-formed XML: .*Envelope|^t\.ovf:1:\d+: not well-formed XML: .*File/ });
});

test('a Secure Boot grub.cfg starts with an empty superusers list and never turns signature checks off', (t) => {
  const input = { prettyName: 'Bottlerocket OS', versionId: '1.2.3', kernelParameters: [], dmVerityTable: bottlerocketVerityTable({ dataBlocks: 1000, rootHash: 'ab'.repeat(32), salt: 'cd'.repeat(32) }) };
  const signed = renderGrubConfig({ ...input, secureBoot: true });
  t.is(signed, `set superusers=""\n${renderGrubConfig(input)}`);
  t.notRegex(signed, /check_signatures/);
  t.notRegex(renderGrubConfig(input), /superusers/);
});
