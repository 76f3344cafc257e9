import { BrlCommand } from '../../lib/cli/base-command.ts';
import { hostFlags } from '../../lib/signpost/command-flags.ts';
import { formatStatus } from '../../lib/signpost/cli.ts';
import { runSignpostCommand, type SignpostStatus } from '../../lib/signpost/index.ts';

export default class SignpostClearInactive extends BrlCommand<SignpostStatus> {
  static override summary = 'Make the inactive partition set unbootable (priority 0, no tries, not successful).';
  static override examples = [
    '<%= config.bin %> signpost clear-inactive',
    '<%= config.bin %> signpost clear-inactive --disk disk.img --root host/ --json',
  ];
  static override flags = hostFlags;

  async run(): Promise<SignpostStatus> {
    const { flags } = await this.parse(SignpostClearInactive);
    const status = await runSignpostCommand({ root: flags.root, ...(flags.disk === undefined ? {} : { disk: flags.disk }) }, 'clear-inactive');
    this.say(formatStatus(status).trimEnd());
    return status;
  }
}
