import { Args } from '@oclif/core';
import { BrlCommand } from '../../../lib/cli/base-command.ts';
import { roleFlag } from '../../../lib/repo/flags.ts';
import { editRootFile, removeRootKey, type RootEditResult } from '../../../lib/repo/root-file.ts';
import type { RoleName } from '../../../lib/tuf/metadata.ts';

export default class RootRemoveKey extends BrlCommand<RootEditResult & { keyId: string }> {
  static override summary = 'Remove a key from roles of a root.json (from all roles by default).';
  static override examples = [
    '<%= config.bin %> repo root remove-key roles/default.root.json 1f2e3d4c',
    '<%= config.bin %> repo root remove-key roles/default.root.json 1f2e3d4c --role timestamp',
  ];

  static override args = {
    root: Args.string({ description: 'root.json to edit', required: true }),
    keyId: Args.string({ description: 'key ID, or a unique prefix of it', required: true }),
  };

  static override flags = { role: roleFlag };

  async run(): Promise<RootEditResult & { keyId: string }> {
    const { args, flags } = await this.parse(RootRemoveKey);
    let keyId = '';
    const result = await editRootFile(args.root, (signed) => {
      keyId = removeRootKey(signed, args.keyId, (flags.role ?? []) as RoleName[]);
    });
    if (result.archivedPath) this.say(`kept signed version ${result.archivedVersion} as ${result.archivedPath}`);
    this.say(`${args.root} v${result.version}: removed key ${keyId}${flags.role ? ` from ${flags.role.join(', ')}` : ''}`);
    return { ...result, keyId };
  }
}
