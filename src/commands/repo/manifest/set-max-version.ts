import { Args, Flags } from '@oclif/core';
import { BrlCommand } from '../../../lib/cli/base-command.ts';
import { editManifestFile } from '../../../lib/repo/manifest-file.ts';
import { setMaxVersion, type Manifest } from '../../../lib/update-metadata/index.ts';

export default class ManifestSetMaxVersion extends BrlCommand<Manifest> {
  static override summary = 'Set max_version on every update (pull or re-allow releases).';
  static override description = 'Updates above max_version are invisible to hosts; lowering it below a published release moves hosts running that release down to the highest visible one.';
  static override examples = ['<%= config.bin %> repo manifest set-max-version manifest.json --max-version 1.20.0'];
  static override args = { file: Args.string({ description: 'manifest.json', required: true }) };
  static override flags = { 'max-version': Flags.string({ char: 'v', description: 'new ceiling (semver)', required: true }) };

  async run(): Promise<Manifest> {
    const { args, flags } = await this.parse(ManifestSetMaxVersion);
    const manifest = await editManifestFile(args.file, (current) => setMaxVersion(current, flags['max-version']));
    this.say(`${args.file}: max_version ${flags['max-version']} on ${manifest.updates.length} update(s)`);
    return manifest;
  }
}
