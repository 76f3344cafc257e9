import { Args } from '@oclif/core';
import { BrlCommand } from '../../../lib/cli/base-command.ts';
import { readManifestFile } from '../../../lib/repo/manifest-file.ts';
import type { Manifest } from '../../../lib/update-metadata/index.ts';

export default class ManifestValidate extends BrlCommand<Manifest> {
  static override summary = 'Check a manifest.json: versions, wave keys and times, migration keys, duplicates.';
  static override examples = ['<%= config.bin %> repo manifest validate manifest.json'];
  static override args = { file: Args.string({ description: 'manifest.json', required: true }) };

  async run(): Promise<Manifest> {
    const { args } = await this.parse(ManifestValidate);
    const manifest = await readManifestFile(args.file);
    for (const update of manifest.updates) {
      this.say(`${update.variant} ${update.arch} ${update.version} (max ${update.max_version}, ${Object.keys(update.waves).length} wave(s))`);
    }
    this.say(`${args.file}: valid, ${manifest.updates.length} update(s), ${Object.keys(manifest.migrations).length} migration step(s)`);
    return manifest;
  }
}
