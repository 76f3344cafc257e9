import { BrlCommand } from '../../lib/cli/base-command.ts';
import { hostFlags } from '../../lib/signpost/command-flags.ts';
import { formatStatus } from '../../lib/signpost/cli.ts';
import { runSignpostCommand, type SignpostStatus } from '../../lib/signpost/index.ts';

export default class SignpostRollbackToInactive extends BrlCommand<SignpostStatus> {
  static override summary = 'Boot the previous set next, if it can still boot.';
  static override examples = [
    '<%= config.bin %> signpost rollback-to-inactive',
    '<%= config.bin %> signpost rollback-to-inactive --disk disk.img --root host/ --json',
  ];
  static override flags = hostFlags;

  async run(): Promise<SignpostStatus> {
    const { flags } = await this.parse(SignpostRollbackToInactive);
    const status = await runSignpostCommand({ root: flags.root, ...(flags.disk === undefined ? {} : { disk: flags.disk }) }, 'rollback-to-inactive');
    this.say(formatStatus(status).trimEnd());
    return status;
  }
}
