import { Args, Flags } from '@oclif/core';
import { BrlCommand } from '../../../lib/cli/base-command.ts';
import { initKeySet, secureBootKeyBits, type KeySetSummary } from '../../../lib/secure-boot/key-set.ts';

export default class KeysSecureBootInit extends BrlCommand<KeySetSummary> {
  static override summary = 'Create the Secure Boot key set: PK, KEK, db, code-signing and GRUB keys.';
  static override description =
    'Writes RSA private keys (PKCS#8 PEM, mode 0600), PK, KEK and db certificates (self-signed CAs), a code-signing certificate issued by db, and GRUB\'s OpenPGP public key (grub.gpg) into a new or empty directory. Images with uefi-secure-boot are signed with code-sign.key and grub.key; keep PK.key, KEK.key and db.key offline.';
  static override examples = [
    '<%= config.bin %> keys secure-boot init keys/secure-boot',
    '<%= config.bin %> keys secure-boot init keys/secure-boot --organization "Example Corp" --valid-days 3650 --bits 3072 --json',
  ];

  static override args = {
    dir: Args.string({ description: 'directory to create (must not exist or be empty)', required: true }),
  };

  static override flags = {
    organization: Flags.string({ description: 'organization (O=) in the certificates and the GRUB key\'s user ID', default: 'brl' }),
    'valid-days': Flags.integer({ description: 'days the certificates are valid from now', min: 1, max: 36_500, default: 3650 }),
    bits: Flags.string({ description: 'RSA modulus size of every key', options: secureBootKeyBits.map(String), default: '2048' }),
  };

  async run(): Promise<KeySetSummary> {
    const { args, flags } = await this.parse(KeysSecureBootInit);
    const summary = await initKeySet(args.dir, {
      organization: flags.organization,
      validDays: flags['valid-days'],
      rsaBits: Number(flags.bits) as (typeof secureBootKeyBits)[number],
    });
    for (const certificate of summary.certificates) this.say(`${certificate.file}: ${certificate.subject} (until ${certificate.notAfter})`);
    this.say(`${summary.grubKey.file}: GRUB's OpenPGP key ${summary.grubKey.fingerprint}`);
    this.say(`wrote ${summary.dir}; private keys (mode 0600): ${summary.privateKeys.join(', ')}`);
    return summary;
  }
}
