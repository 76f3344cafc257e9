import { BrlCommand } from '../../lib/cli/base-command.ts';
import { hostFlags } from '../../lib/signpost/command-flags.ts';
import { formatStatus } from '../../lib/signpost/cli.ts';
import { runSignpostCommand, type SignpostStatus } from '../../lib/signpost/index.ts';

export default class SignpostMarkSuccessfulBoot extends BrlCommand<SignpostStatus> {
  static override summary = 'Mark the running set as successfully booted (and the disk as having booted once).';
  static override examples = [
    '<%= config.bin %> signpost mark-successful-boot',
    '<%= config.bin %> signpost mark-successful-boot --disk disk.img --root host/ --json',
  ];
  static override flags = hostFlags;

  async run(): Promise<SignpostStatus> {
    const { flags } = await this.parse(SignpostMarkSuccessfulBoot);
    const status = await runSignpostCommand({ root: flags.root, ...(flags.disk === undefined ? {} : { disk: flags.disk }) }, 'mark-successful-boot');
    this.say(formatStatus(status).trimEnd());
    return status;
  }
}
