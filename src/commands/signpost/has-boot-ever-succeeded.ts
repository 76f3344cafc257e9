import { BrlCommand } from '../../lib/cli/base-command.ts';
import { hostFlags } from '../../lib/signpost/command-flags.ts';
import { signpostHasBootEverSucceeded } from '../../lib/signpost/index.ts';

export default class SignpostHasBootEverSucceeded extends BrlCommand<{ hasBootEverSucceeded: boolean }> {
  static override summary = 'Print "true" if any boot of this disk ever reached mark-successful-boot, otherwise nothing.';
  static override examples = ['<%= config.bin %> signpost has-boot-ever-succeeded --disk disk.img'];
  static override flags = hostFlags;

  async run(): Promise<{ hasBootEverSucceeded: boolean }> {
    const { flags } = await this.parse(SignpostHasBootEverSucceeded);
    const succeeded = await signpostHasBootEverSucceeded({ root: flags.root, ...(flags.disk === undefined ? {} : { disk: flags.disk }) });
    if (succeeded) this.say('true');
    return { hasBootEverSucceeded: succeeded };
  }
}
