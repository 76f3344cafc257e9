import { BrlCommand } from '../../lib/cli/base-command.ts';
import { hostFlags } from '../../lib/signpost/command-flags.ts';
import { formatStatus } from '../../lib/signpost/cli.ts';
import { runSignpostCommand, type SignpostStatus } from '../../lib/signpost/index.ts';

export default class SignpostUpgradeToInactive extends BrlCommand<SignpostStatus> {
  static override summary = 'Boot the inactive set next, keeping the active set as the fallback.';
  static override examples = [
    '<%= config.bin %> signpost upgrade-to-inactive',
    '<%= config.bin %> signpost upgrade-to-inactive --disk disk.img --root host/ --json',
  ];
  static override flags = hostFlags;

  async run(): Promise<SignpostStatus> {
    const { flags } = await this.parse(SignpostUpgradeToInactive);
    const status = await runSignpostCommand({ root: flags.root, ...(flags.disk === undefined ? {} : { disk: flags.disk }) }, 'upgrade-to-inactive');
    this.say(formatStatus(status).trimEnd());
    return status;
  }
}
