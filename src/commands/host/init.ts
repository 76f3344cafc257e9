import { Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { prepareRoot, type PrepareRootResult } from '../../lib/host/boot/prepare-root.ts';

export default class HostInit extends BrlCommand<PrepareRootResult> {
  static override summary = "Install a variant's host API files into a root: os-release, settings defaults, model, templates.";
  static override description =
    "What the variant's settings packages install on an image: defaults merged in file-name order into usr/share/storewolf/<variant>.toml (linked from etc/storewolf/defaults.toml), the settings model, and the config templates. Use it to make a dev root for `brl host boot`.";
  static override examples = ['<%= config.bin %> host init --root build/dev-root --variant dev --version 1.0.0'];

  static override flags = {
    root: Flags.string({ description: 'root directory to fill', required: true }),
    variant: Flags.string({ description: 'variant whose defaults to install', default: 'dev' }),
    version: Flags.string({ description: 'OS version written to os-release (VERSION_ID)', default: '1.0.0' }),
    'defaults-dir': Flags.string({ description: 'directory with <variant>/defaults.d, <variant>/model.toml and templates/ (default: brl\'s own)' }),
  };

  async run(): Promise<PrepareRootResult> {
    const { flags } = await this.parse(HostInit);
    const result = await prepareRoot({
      root: flags.root,
      variant: flags.variant,
      version: flags.version,
      ...(flags['defaults-dir'] === undefined ? {} : { defaultsDir: flags['defaults-dir'] }),
    });
    this.say(`${result.root}: ${result.fragments.length} defaults fragments merged, groups ${result.groups.join(', ')}, ${result.templates.length} templates`);
    return result;
  }
}
