// grub.cfg for BOOT: the dm-verity table and the kernel command line, in exactly upstream's shape.
import { renderVerityTable, type VerityTable } from '../image/verity-table.ts';

export interface GrubConfigInput {
  prettyName: string;
  versionId: string;
  kernelParameters: readonly string[];
  /** The root's dm-verity table, written as `dm-mod.create` (image-layout.md §6). */
  dmVerityTable: VerityTable;
}

export function kernelCommandLine(kernelParameters: readonly string[]): string {
  return [
    ...kernelParameters,
    'bootconfig',
    'root=/dev/dm-0 rootwait ro raid=noautodetect random.trust_cpu=on selinux=1 enforcing=1 dm-mod.create="$dm_verity_root"',
    '-- systemd.log_target=journal-or-kmsg systemd.log_color=0 systemd.show_status=true',
  ].join(' ');
}

export function renderGrubConfig(input: GrubConfigInput): string {
  return [
    'set default="0"',
    'set timeout="0"',
    `set dm_verity_root="${renderVerityTable(input.dmVerityTable)}"`,
    '',
    `menuentry "${input.prettyName} ${input.versionId}" --unrestricted {`,
    `   linux ($root)/vmlinuz ${kernelCommandLine(input.kernelParameters)}`,
    '   initrd ($private)/bootconfig.data',
    '   boot',
    '}',
    '',
  ].join('\n');
}
