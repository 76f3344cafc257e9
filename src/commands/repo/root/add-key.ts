import { Args } from '@oclif/core';
import { BrlCommand } from '../../../lib/cli/base-command.ts';
import { publicKeyFrom } from '../../../lib/repo/context.ts';
import { roleFlag } from '../../../lib/repo/flags.ts';
import { addRootKey, editRootFile, type RootEditResult } from '../../../lib/repo/root-file.ts';
import type { RoleName } from '../../../lib/tuf/metadata.ts';

export interface RootAddKeyResult extends RootEditResult {
  keyId: string;
  keytype: string;
  roles: string[];
}

export default class RootAddKey extends BrlCommand<RootAddKeyResult> {
  static override summary = 'Add a public key to roles of a root.json.';
  static override description = [
    'KEY is a public key PEM file (so co-signers never hand over private keys), a private key file, file:///…, aws-kms://[profile]/KEY-ID or aws-ssm://[profile]/PARAMETER; only the public key is stored.',
    'The key ID is the sha256 of the key\'s canonical JSON.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> repo root add-key roles/default.root.json keys/default.pem',
    '<%= config.bin %> repo root add-key roles/default.root.json alice.pub.pem --role root',
    '<%= config.bin %> repo root add-key roles/default.root.json aws-kms:///alias/release --role targets --role snapshot --role timestamp',
  ];

  static override args = {
    root: Args.string({ description: 'root.json to edit', required: true }),
    key: Args.string({ description: 'public key PEM file or key source', required: true }),
  };

  static override flags = { role: roleFlag };

  async run(): Promise<RootAddKeyResult> {
    const { args, flags } = await this.parse(RootAddKey);
    const { key } = await publicKeyFrom(args.key);
    const roles = (flags.role ?? []) as RoleName[];
    let keyId = '';
    const result = await editRootFile(args.root, (signed) => {
      keyId = addRootKey(signed, key, roles);
    });
    if (result.archivedPath) this.say(`kept signed version ${result.archivedVersion} as ${result.archivedPath}`);
    const roleList = roles.length > 0 ? roles : ['root', 'snapshot', 'targets', 'timestamp'];
    this.say(`${args.root} v${result.version}: added ${key.keytype} key ${keyId} to ${roleList.join(', ')}`);
    return { ...result, keyId, keytype: key.keytype, roles: roleList };
  }
}
