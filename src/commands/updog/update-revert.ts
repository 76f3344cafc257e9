import { BrlCommand } from '../../lib/cli/base-command.ts';
import { hostFlags } from '../../lib/signpost/command-flags.ts';
import type { SignpostStatus } from '../../lib/signpost/index.ts';
import { revertUpdate } from '../../lib/updog/index.ts';

export default class UpdogUpdateRevert extends BrlCommand<SignpostStatus> {
  static override summary = 'Undo update-apply: keep booting the running set; the update stays staged.';
  static override examples = ['<%= config.bin %> updog update-revert', '<%= config.bin %> updog update-revert --disk disk.img --root host/ --json'];
  static override flags = hostFlags;

  async run(): Promise<SignpostStatus> {
    const { flags } = await this.parse(UpdogUpdateRevert);
    const status = await revertUpdate({ root: flags.root, ...(flags.disk === undefined ? {} : { disk: flags.disk }) });
    this.say(`Set ${status.nextSet} boots next`);
    return status;
  }
}
