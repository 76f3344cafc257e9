// grub.cfg for BOOT: the dm-verity table and the kernel command line, in exactly upstream's shape.
import { renderVerityTable, type VerityTable } from '../image/verity-table.ts';

export interface GrubConfigInput {
  prettyName: string;
  versionId: string;
  kernelParameters: readonly string[];
  /** The root's dm-verity table, written as `dm-mod.create` (image-layout.md §6). */
  dmVerityTable: VerityTable;
  /** What the kernel is given besides the command line; default: PRIVATE's bootconfig only. */
  initrd?: InitrdParts;
  /**
   * uefi-secure-boot: nobody may edit an entry or reach GRUB's shell at the console (an empty
   * superusers list; the entries stay --unrestricted, so they boot). Signature checks stay
   * enforced: GRUB's key checks the kernel and initrd, there is no shim to do it.
   */
  secureBoot?: boolean;
}

export interface InitrdParts {
  /** BOOT's `initrd.img`: verity-init, for kernels that cannot read `dm-mod.create` themselves. */
  initramfs: boolean;
  /**
   * PRIVATE's `bootconfig.data` and the `bootconfig` word. brl: only for kernels built with
   * CONFIG_BOOT_CONFIG; any other kernel would try to unpack those bytes as an initramfs.
   */
  bootconfig: boolean;
}

export function kernelCommandLine(kernelParameters: readonly string[], bootconfig = true): string {
  return [
    ...kernelParameters,
    ...(bootconfig ? ['bootconfig'] : []),
    'root=/dev/dm-0 rootwait ro raid=noautodetect random.trust_cpu=on selinux=1 enforcing=1 dm-mod.create="$dm_verity_root"',
    '-- systemd.log_target=journal-or-kmsg systemd.log_color=0 systemd.show_status=true',
  ].join(' ');
}

export function renderGrubConfig(input: GrubConfigInput): string {
  const parts = input.initrd ?? { initramfs: false, bootconfig: true };
  const initrds = [...(parts.initramfs ? ['($root)/initrd.img'] : []), ...(parts.bootconfig ? ['($private)/bootconfig.data'] : [])];
  return [
    ...(input.secureBoot ? ['set superusers=""'] : []),
    'set default="0"',
    'set fallback="1"',
    'set timeout="0"',
    `set dm_verity_root="${renderVerityTable(input.dmVerityTable)}"`,
    '',
    `menuentry "${input.prettyName} ${input.versionId}" --unrestricted {`,
    `   linux ($root)/vmlinuz ${kernelCommandLine(input.kernelParameters, parts.bootconfig)}`,
    ...(initrds.length > 0 ? [`   initrd ${initrds.join(' ')}`] : []),
    '   boot',
    '}',
    '',
    // Without a fallback entry, a kernel GRUB cannot load leaves it waiting at its menu for a key,
    // forever. Rebooting instead lets gptprio, which has spent this bank's try, pick the other bank.
    'menuentry "Reboot: this bank did not boot" --unrestricted {',
    '   echo "brl: this bank\'s kernel did not boot; rebooting in 10 s"',
    '   sleep 10',
    '   reboot',
    '}',
    '',
  ].join('\n');
}
