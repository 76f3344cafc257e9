import { BrlCommand } from '../../lib/cli/base-command.ts';
import { hostFlags } from '../../lib/signpost/command-flags.ts';
import { formatStatus } from '../../lib/signpost/cli.ts';
import { runSignpostCommand, type SignpostStatus } from '../../lib/signpost/index.ts';

export default class SignpostCancelUpgrade extends BrlCommand<SignpostStatus> {
  static override summary = 'Undo upgrade-to-inactive before rebooting.';
  static override examples = [
    '<%= config.bin %> signpost cancel-upgrade',
    '<%= config.bin %> signpost cancel-upgrade --disk disk.img --root host/ --json',
  ];
  static override flags = hostFlags;

  async run(): Promise<SignpostStatus> {
    const { flags } = await this.parse(SignpostCancelUpgrade);
    const status = await runSignpostCommand({ root: flags.root, ...(flags.disk === undefined ? {} : { disk: flags.disk }) }, 'cancel-upgrade');
    this.say(formatStatus(status).trimEnd());
    return status;
  }
}
