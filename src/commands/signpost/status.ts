import { BrlCommand } from '../../lib/cli/base-command.ts';
import { hostFlags } from '../../lib/signpost/command-flags.ts';
import { formatStatus } from '../../lib/signpost/cli.ts';
import { signpostStatus, type SignpostStatus } from '../../lib/signpost/index.ts';

export default class SignpostStatusCommand extends BrlCommand<SignpostStatus> {
  static override summary = 'Show the disk\'s A/B partition sets, their boot flags, and the active and next set.';
  static override examples = [
    '<%= config.bin %> signpost status',
    '<%= config.bin %> signpost status --disk disk.img --root host/ --json',
  ];
  static override flags = hostFlags;

  async run(): Promise<SignpostStatus> {
    const { flags } = await this.parse(SignpostStatusCommand);
    const status = await signpostStatus({ root: flags.root, ...(flags.disk === undefined ? {} : { disk: flags.disk }) });
    this.say(formatStatus(status).trimEnd());
    return status;
  }
}
