// The one signing interface: PEM files, SSM parameters and KMS keys all look like this.
import type { KeyJson } from '../tuf/key.ts';

export interface Signer {
  /** The public key in TUF form, as root.json lists it. */
  readonly publicKey: KeyJson;
  /** sha256 of the key's canonical JSON. */
  readonly keyId: string;
  /** Where the key lives, for messages (`file:///…`, `aws-kms:///…`); never key material. */
  readonly source: string;
  /** Signs `data` with the key's scheme (RSA-PSS-SHA256, Ed25519 or ECDSA-P256-SHA256). */
  sign(data: Uint8Array): Promise<Uint8Array>;
}
