import { runDoctor, type DoctorResult } from '../lib/doctor/doctor.ts';
import { BrlCommand } from '../lib/cli/base-command.ts';
import { BrlError, ExitCode } from '../lib/core/errors.ts';

const useLabel = { build: 'MISSING', test: 'missing (tests)', vm: 'missing (VMs)' } as const;

export default class Doctor extends BrlCommand<DoctorResult> {
  static override description = 'Check the host tools brl needs to build, test and boot images, and print the command that installs missing ones.';
  static override examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json'];

  async run(): Promise<DoctorResult> {
    await this.parse(Doctor);
    const result = runDoctor();
    for (const tool of result.tools) {
      const state = tool.path ?? `${useLabel[tool.use]}: apt-get install ${tool.debianPackage}`;
      this.say(`${tool.command.padEnd(20)} ${state.padEnd(44)} ${tool.purpose}`);
    }
    if (result.installCommand) this.say(`\nInstall everything missing with: ${result.installCommand}`);
    if (result.missing.build.length > 0 && !this.jsonEnabled()) {
      throw new BrlError(`missing host tools that builds need: ${result.missing.build.join(', ')}`, {
        hint: `install them with: ${result.installCommand}`,
        exitCode: ExitCode.missingTool,
        code: 'MISSING_HOST_TOOL',
      });
    }
    return result;
  }
}
