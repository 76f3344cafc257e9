import { Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { applyUpdate, reboot, type UpdateResult } from '../../lib/updog/index.ts';
import { updogFlags, updogOptionsFromFlags } from '../../lib/updog/command-flags.ts';

export default class UpdogUpdate extends BrlCommand<UpdateResult> {
  static override summary = 'Download the chosen update into the inactive partitions, verify it, and boot it next.';
  static override examples = [
    '<%= config.bin %> updog update',
    '<%= config.bin %> updog update --image 1.27.0 --now --root host/ --disk disk.img',
  ];
  static override flags = {
    ...updogFlags,
    reboot: Flags.boolean({ char: 'r', description: 'reboot afterwards (runs shutdown -r, or $UPDOG_REBOOT_COMMAND)', default: false }),
  };

  async run(): Promise<UpdateResult> {
    const { flags } = await this.parse(UpdogUpdate);
    const result = await applyUpdate({ ...updogOptionsFromFlags(flags), activate: true, log: (level, message) => {
      if (level === 'info' || level === 'warn' || level === 'error') this.logToStderr(message);
    } });
    if (!result.update) {
      this.say('No update required');
      return result;
    }
    this.say(`Update applied: ${result.update.variant} ${result.update.version}`);
    if (flags.reboot) await reboot();
    return result;
  }
}
