// The one signing interface: PEM files, SSM parameters and KMS keys all look like this.
import type { KeyJson } from '../tuf/key.ts';

/**
 * RSASSA-PKCS1-v1_5 with SHA-256: what UEFI Authenticode and OpenPGP (GRUB's verifier) check.
 * Without a scheme a key signs with its TUF scheme.
 */
export type SignatureScheme = 'rsa-pkcs1v15-sha256';

export interface Signer {
  /** The public key in TUF form, as root.json lists it. */
  readonly publicKey: KeyJson;
  /** sha256 of the key's canonical JSON. */
  readonly keyId: string;
  /** Where the key lives, for messages (`file:///…`, `aws-kms:///…`); never key material. */
  readonly source: string;
  /**
   * Signs `data` with the key's scheme (RSA-PSS-SHA256, Ed25519 or ECDSA-P256-SHA256), or with
   * `scheme`, which only RSA keys have (a `BrlError` naming the key otherwise).
   */
  sign(data: Uint8Array, scheme?: SignatureScheme): Promise<Uint8Array>;
}
