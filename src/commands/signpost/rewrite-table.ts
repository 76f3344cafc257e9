import { BrlCommand } from '../../lib/cli/base-command.ts';
import { hostFlags } from '../../lib/signpost/command-flags.ts';
import { formatStatus } from '../../lib/signpost/cli.ts';
import { runSignpostCommand, type SignpostStatus } from '../../lib/signpost/index.ts';

export default class SignpostRewriteTable extends BrlCommand<SignpostStatus> {
  static override summary = 'Rewrite the partition table unchanged (both GPT copies; for testing).';
  static override examples = [
    '<%= config.bin %> signpost rewrite-table',
    '<%= config.bin %> signpost rewrite-table --disk disk.img --root host/ --json',
  ];
  static override flags = hostFlags;

  async run(): Promise<SignpostStatus> {
    const { flags } = await this.parse(SignpostRewriteTable);
    const status = await runSignpostCommand({ root: flags.root, ...(flags.disk === undefined ? {} : { disk: flags.disk }) }, 'rewrite-table');
    this.say(formatStatus(status).trimEnd());
    return status;
  }
}
