import { Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { formatStatus } from '../../lib/signpost/cli.ts';
import { nextBoot, type NextBootResult } from '../../lib/signpost/index.ts';

export default class SignpostNextBoot extends BrlCommand<NextBootResult> {
  static override summary = 'Boot a disk image as GRUB\'s gptprio.next would: choose a set, use up one try, record it as running.';
  static override description = 'Lets tests and users walk an update through stage → activate → boot → success, or see a failed boot fall back. The booted set is recorded under --root, where signpost and updog read it as the active set.';
  static override examples = [
    '<%= config.bin %> signpost next-boot --disk disk.img --root host/',
    '<%= config.bin %> signpost next-boot --disk disk.img --root host/ --json',
  ];
  static override flags = {
    disk: Flags.string({ description: 'disk image to boot', required: true }),
    root: Flags.string({ description: 'scratch host root where the running set is recorded', required: true }),
  };

  async run(): Promise<NextBootResult> {
    const { flags } = await this.parse(SignpostNextBoot);
    const result = await nextBoot({ root: flags.root, disk: flags.disk });
    this.say(`GRUB boots set ${result.booted}${result.triesDecremented ? ' (one try used)' : ''}`);
    this.say(formatStatus(result).trimEnd());
    return result;
  }
}
