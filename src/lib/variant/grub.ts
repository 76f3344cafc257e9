// grub.cfg for BOOT: the dm-verity table and the kernel command line, in exactly upstream's shape.

export interface GrubConfigInput {
  prettyName: string;
  versionId: string;
  kernelParameters: readonly string[];
  /** The `dm-mod.create` table (image-layout.md §6). */
  dmVerityTable: string;
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
    `set dm_verity_root="${input.dmVerityTable}"`,
    '',
    `menuentry "${input.prettyName} ${input.versionId}" --unrestricted {`,
    `   linux ($root)/vmlinuz ${kernelCommandLine(input.kernelParameters)}`,
    '   initrd ($private)/bootconfig.data',
    '   boot',
    '}',
    '',
  ].join('\n');
}

/** The verity table back out of a grub.cfg this module wrote (for `veritysetup verify` in tests and checks). */
export function dmVerityTableFromGrub(config: string): string | undefined {
  return /^set dm_verity_root="([^"]*)"$/m.exec(config)?.[1];
}
