import { Args } from '@oclif/core';
import { BrlCommand } from '../../../lib/cli/base-command.ts';
import { initRootFile } from '../../../lib/repo/root-file.ts';
import { nowSeconds } from '../../../lib/tuf/time.ts';

export interface RootInitResult {
  path: string;
  version: number;
  expires: string;
}

export default class RootInit extends BrlCommand<RootInitResult> {
  static override summary = 'Create a new, empty root.json.';
  static override description = [
    'Like `tuftool root init`: consistent snapshots on, version 1, expiring now, no keys, and every threshold set to 1507 so that nothing ships before you choose real ones.',
    'Next: expire, set-threshold, add-key or gen-key, then sign.',
  ].join('\n\n');

  static override examples = ['<%= config.bin %> repo root init roles/default.root.json'];
  static override args = { root: Args.string({ description: 'root.json to create', required: true }) };

  async run(): Promise<RootInitResult> {
    const { args } = await this.parse(RootInit);
    const root = await initRootFile(args.root, nowSeconds());
    this.say(`created ${args.root} (version 1); next: brl repo root expire, set-threshold, add-key, sign`);
    return { path: args.root, version: root.signed.version, expires: root.signed.expires };
  }
}
