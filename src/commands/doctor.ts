import { runDoctor, type DoctorResult } from '../lib/doctor/doctor.ts';
import { BrlCommand } from '../lib/cli/base-command.ts';
import { BrlError, ExitCode } from '../lib/core/errors.ts';

export default class Doctor extends BrlCommand<DoctorResult> {
  static override description = 'Check the host tools brl needs and print the command that installs missing ones.';
  static override examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json'];

  async run(): Promise<DoctorResult> {
    await this.parse(Doctor);
    const result = runDoctor();
    for (const tool of result.tools) {
      const state = tool.path ?? (tool.optional ? 'missing (optional)' : 'MISSING');
      this.say(`${tool.command.padEnd(12)} ${state.padEnd(28)} ${tool.purpose}`);
    }
    if (result.installCommand) this.say(`\nInstall with: ${result.installCommand}`);
    if (result.missingRequired.length > 0 && !this.jsonEnabled()) {
      throw new BrlError(`missing required host tools: ${result.missingRequired.join(', ')}`, {
        hint: `install them with: ${result.installCommand}`,
        exitCode: ExitCode.missingTool,
        code: 'MISSING_HOST_TOOL',
      });
    }
    return result;
  }
}
