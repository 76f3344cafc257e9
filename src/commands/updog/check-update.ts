import { Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { BrlError, ExitCode } from '../../lib/core/errors.ts';
import { checkUpdate } from '../../lib/updog/index.ts';
import { updogFlags, updogOptionsFromFlags } from '../../lib/updog/command-flags.ts';
import type { Update } from '../../lib/update-metadata/index.ts';

export default class UpdogCheckUpdate extends BrlCommand<Update | Update[]> {
  static override summary = 'Show the update this host would take (or, with --all, every update it may take).';
  static override aliases = ['updog:whats'];
  static override examples = [
    '<%= config.bin %> updog check-update',
    '<%= config.bin %> updog check-update --all --json --root host/ --disk disk.img',
  ];
  static override flags = {
    ...updogFlags,
    all: Flags.boolean({ char: 'a', description: 'list every applicable update, newest first', default: false }),
  };

  async run(): Promise<Update | Update[]> {
    const { flags } = await this.parse(UpdogCheckUpdate);
    const { chosen, applicable } = await checkUpdate(updogOptionsFromFlags(flags));
    if (flags.all) {
      for (const update of applicable) this.say(`${update.variant} ${update.version}`);
      return applicable;
    }
    if (!chosen) throw new BrlError('No update available', { hint: 'add --now to ignore waves, or --all to list what is published', exitCode: ExitCode.notFound, code: 'NO_UPDATE' });
    this.say(`${chosen.variant} ${chosen.version}`);
    return chosen;
  }
}
