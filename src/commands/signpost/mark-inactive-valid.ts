import { BrlCommand } from '../../lib/cli/base-command.ts';
import { hostFlags } from '../../lib/signpost/command-flags.ts';
import { formatStatus } from '../../lib/signpost/cli.ts';
import { runSignpostCommand, type SignpostStatus } from '../../lib/signpost/index.ts';

export default class SignpostMarkInactiveValid extends BrlCommand<SignpostStatus> {
  static override summary = 'Mark the inactive set as holding a complete image (one boot try).';
  static override examples = [
    '<%= config.bin %> signpost mark-inactive-valid',
    '<%= config.bin %> signpost mark-inactive-valid --disk disk.img --root host/ --json',
  ];
  static override flags = hostFlags;

  async run(): Promise<SignpostStatus> {
    const { flags } = await this.parse(SignpostMarkInactiveValid);
    const status = await runSignpostCommand({ root: flags.root, ...(flags.disk === undefined ? {} : { disk: flags.disk }) }, 'mark-inactive-valid');
    this.say(formatStatus(status).trimEnd());
    return status;
  }
}
