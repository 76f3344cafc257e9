import { BrlCommand } from '../../lib/cli/base-command.ts';
import { applyUpdate, type UpdateResult } from '../../lib/updog/index.ts';
import { updogFlags, updogOptionsFromFlags } from '../../lib/updog/command-flags.ts';

export default class UpdogUpdateImage extends BrlCommand<UpdateResult> {
  static override summary = 'Download and verify the chosen update into the inactive partitions without changing which set boots.';
  static override examples = [
    '<%= config.bin %> updog update-image',
    '<%= config.bin %> updog update-image --image 1.27.0 --now --root host/ --disk disk.img',
  ];
  static override flags = updogFlags;

  async run(): Promise<UpdateResult> {
    const { flags } = await this.parse(UpdogUpdateImage);
    const result = await applyUpdate({ ...updogOptionsFromFlags(flags), activate: false, log: (level, message) => {
      if (level === 'info' || level === 'warn' || level === 'error') this.logToStderr(message);
    } });
    if (!result.update) {
      this.say('No update required');
      return result;
    }
    this.say(`Update applied: ${result.update.variant} ${result.update.version}`);
    return result;
  }
}
