import { Args, Flags } from '@oclif/core';
import { BrlCommand } from '../../../lib/cli/base-command.ts';
import { roleFlag } from '../../../lib/repo/flags.ts';
import { addRootKey, editRootFile, readRootFile, type RootEditResult } from '../../../lib/repo/root-file.ts';
import { generateKeyFile, generatedKeyTypes, type GeneratedKeyType } from '../../../lib/signing/key-file.ts';
import type { RoleName } from '../../../lib/tuf/metadata.ts';

export interface RootGenKeyResult extends RootEditResult {
  keyPath: string;
  keyId: string;
  keytype: string;
  roles: string[];
}

export default class RootGenKey extends BrlCommand<RootGenKeyResult> {
  static override summary = 'Generate a private key file and add its public key to a root.json.';
  static override description = 'The key is written as PKCS#8 PEM with mode 0600 and never printed; an existing file is never overwritten.';
  static override examples = [
    '<%= config.bin %> repo root gen-key roles/default.root.json keys/default.pem',
    '<%= config.bin %> repo root gen-key roles/default.root.json keys/root-1.pem --type ed25519 --role root',
  ];

  static override args = {
    root: Args.string({ description: 'root.json to edit', required: true }),
    keyPath: Args.string({ description: 'private key file to create', required: true }),
  };

  static override flags = {
    type: Flags.string({ description: 'key type', options: [...generatedKeyTypes], default: 'rsa' }),
    bits: Flags.integer({ description: 'RSA modulus size in bits', min: 2048, max: 4096, default: 3072 }),
    role: roleFlag,
  };

  async run(): Promise<RootGenKeyResult> {
    const { args, flags } = await this.parse(RootGenKey);
    // A root that cannot be read or parsed must fail before a private key exists that no root lists.
    await readRootFile(args.root);
    const signer = await generateKeyFile(args.keyPath, flags.type as GeneratedKeyType, { rsaBits: flags.bits });
    const roles = (flags.role ?? []) as RoleName[];
    const result = await editRootFile(args.root, (signed) => {
      addRootKey(signed, signer.publicKey, roles);
    });
    if (result.archivedPath) this.say(`kept signed version ${result.archivedVersion} as ${result.archivedPath}`);
    const roleList = roles.length > 0 ? roles : ['root', 'snapshot', 'targets', 'timestamp'];
    this.say(`wrote ${args.keyPath} (mode 0600); added ${signer.publicKey.keytype} key ${signer.keyId} to ${roleList.join(', ')}`);
    return { ...result, keyPath: args.keyPath, keyId: signer.keyId, keytype: signer.publicKey.keytype, roles: roleList };
  }
}
