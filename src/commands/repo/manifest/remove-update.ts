import { Args, Flags } from '@oclif/core';
import { BrlCommand } from '../../../lib/cli/base-command.ts';
import { editManifestFile } from '../../../lib/repo/manifest-file.ts';
import { removeUpdate, type Manifest } from '../../../lib/update-metadata/index.ts';

export default class ManifestRemoveUpdate extends BrlCommand<Manifest> {
  static override summary = 'Remove one update from a manifest.json (max_version is never lowered).';
  static override examples = ['<%= config.bin %> repo manifest remove-update manifest.json --variant dev --arch x86_64 --version 1.1.0'];
  static override args = { file: Args.string({ description: 'manifest.json', required: true }) };
  static override flags = {
    variant: Flags.string({ char: 'l', description: 'variant', required: true }),
    arch: Flags.string({ char: 'a', description: 'architecture', required: true }),
    version: Flags.string({ char: 'v', description: 'image version', required: true }),
  };

  async run(): Promise<Manifest> {
    const { args, flags } = await this.parse(ManifestRemoveUpdate);
    const manifest = await editManifestFile(args.file, (current) => removeUpdate(current, { variant: flags.variant, arch: flags.arch, version: flags.version }));
    this.say(`${args.file}: removed ${flags.variant} ${flags.arch} ${flags.version}; ${manifest.updates.length} update(s) left`);
    return manifest;
  }
}
