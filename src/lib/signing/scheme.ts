// Which keys can sign with an explicitly requested scheme.
import { BrlError, ExitCode } from '../core/errors.ts';
import type { SignatureScheme } from './signer.ts';

/** Throws unless a key of `keyType` can sign with `scheme`: Secure Boot's formats need RSA. */
export function schemeNeedsRsa(keyType: string, scheme: SignatureScheme, source: string): void {
  if (keyType === 'rsa') return;
  throw new BrlError(`${source}: ${keyType} keys cannot sign ${scheme}`, {
    hint: 'UEFI Authenticode and GRUB\'s OpenPGP verifier need an RSA key; use an RSA key file or an RSA KMS key',
    exitCode: ExitCode.badInput,
    code: 'WRONG_KEY_TYPE',
  });
}
