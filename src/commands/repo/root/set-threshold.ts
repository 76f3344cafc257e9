import { Args } from '@oclif/core';
import { BrlCommand } from '../../../lib/cli/base-command.ts';
import { editRootFile, setRoleThreshold, type RootEditResult } from '../../../lib/repo/root-file.ts';
import { roleNames, type RoleName } from '../../../lib/tuf/metadata.ts';

export default class RootSetThreshold extends BrlCommand<RootEditResult & { role: string; threshold: number }> {
  static override summary = 'Set how many signatures a role needs.';
  static override description = 'Production roots should need several root signatures and keep root keys apart from the keys that sign releases.';
  static override examples = [
    '<%= config.bin %> repo root set-threshold roles/default.root.json root 2',
    '<%= config.bin %> repo root set-threshold roles/default.root.json timestamp 1',
  ];

  static override args = {
    root: Args.string({ description: 'root.json to edit', required: true }),
    role: Args.string({ description: 'role', options: [...roleNames], required: true }),
    threshold: Args.integer({ description: 'signatures required (≥ 1)', required: true, min: 1 }),
  };

  async run(): Promise<RootEditResult & { role: string; threshold: number }> {
    const { args } = await this.parse(RootSetThreshold);
    const result = await editRootFile(args.root, (signed) => setRoleThreshold(signed, args.role as RoleName, args.threshold));
    if (result.archivedPath) this.say(`kept signed version ${result.archivedVersion} as ${result.archivedPath}`);
    this.say(`${args.root} v${result.version}: ${args.role} threshold ${args.threshold}`);
    return { ...result, role: args.role, threshold: args.threshold };
  }
}
