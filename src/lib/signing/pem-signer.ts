// Signing with a private key held in memory (read from a PEM file or an SSM parameter).
import { constants, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { keyIdOf, keyJsonFromPublicKey, rsaPssOptions, type KeyJson } from '../tuf/key.ts';
import { schemeNeedsRsa } from './scheme.ts';
import type { SignatureScheme, Signer } from './signer.ts';

export class PrivateKeySigner implements Signer {
  readonly publicKey: KeyJson;
  readonly keyId: string;
  readonly source: string;
  readonly #privateKey: KeyObject;

  constructor(privateKey: KeyObject, source: string) {
    this.#privateKey = privateKey;
    this.publicKey = keyJsonFromPublicKey(createPublicKey(privateKey));
    this.keyId = keyIdOf(this.publicKey);
    this.source = source;
  }

  async sign(data: Uint8Array, scheme?: SignatureScheme): Promise<Uint8Array> {
    if (scheme !== undefined) {
      schemeNeedsRsa(this.#privateKey.asymmetricKeyType ?? 'unknown', scheme, this.source);
      return cryptoSign('sha256', data, { key: this.#privateKey, padding: constants.RSA_PKCS1_PADDING });
    }
    switch (this.#privateKey.asymmetricKeyType) {
      case 'rsa':
        return cryptoSign('sha256', data, { key: this.#privateKey, ...rsaPssOptions });
      case 'ed25519':
        return cryptoSign(null, data, this.#privateKey);
      default:
        return cryptoSign('sha256', data, this.#privateKey);
    }
  }

  /** Keeps key material out of logs and `--json` output. */
  toJSON(): { keyId: string; source: string } {
    return { keyId: this.keyId, source: this.source };
  }
}
