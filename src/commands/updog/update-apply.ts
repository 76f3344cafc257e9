import { Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { hostFlags } from '../../lib/signpost/command-flags.ts';
import type { SignpostStatus } from '../../lib/signpost/index.ts';
import { applyStagedUpdate, reboot } from '../../lib/updog/index.ts';

export default class UpdogUpdateApply extends BrlCommand<SignpostStatus> {
  static override summary = 'Boot the update staged by update-image at the next reboot.';
  static override examples = ['<%= config.bin %> updog update-apply', '<%= config.bin %> updog update-apply --reboot'];
  static override flags = {
    ...hostFlags,
    reboot: Flags.boolean({ char: 'r', description: 'reboot afterwards (runs shutdown -r, or $UPDOG_REBOOT_COMMAND)', default: false }),
  };

  async run(): Promise<SignpostStatus> {
    const { flags } = await this.parse(UpdogUpdateApply);
    const status = await applyStagedUpdate({ root: flags.root, ...(flags.disk === undefined ? {} : { disk: flags.disk }) });
    this.say(`Set ${status.nextSet} boots next`);
    if (flags.reboot) await reboot();
    return status;
  }
}
