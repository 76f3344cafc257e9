// Signing with an AWS KMS asymmetric RSA key: RSASSA-PSS-SHA-256 over the SHA-256 digest.
import { createHash, createPublicKey } from 'node:crypto';
import { GetPublicKeyCommand, SignCommand, type KMSClient, type SigningAlgorithmSpec } from '@aws-sdk/client-kms';
import { AwsClients } from '../aws/clients.ts';
import { BrlError, ExitCode } from '../core/errors.ts';
import { keyIdOf, keyJsonFromPublicKey, type KeyJson } from '../tuf/key.ts';
import type { SignatureScheme, Signer } from './signer.ts';

export const kmsSigningAlgorithm = 'RSASSA_PSS_SHA_256';
const kmsAlgorithmOf: Record<SignatureScheme, SigningAlgorithmSpec> = { 'rsa-pkcs1v15-sha256': 'RSASSA_PKCS1_V1_5_SHA_256' };

export class KmsSigner implements Signer {
  readonly publicKey: KeyJson;
  readonly keyId: string;
  readonly source: string;
  readonly #client: KMSClient;
  readonly #kmsKeyId: string;
  readonly #modulusBytes: number;

  private constructor(client: KMSClient, kmsKeyId: string, publicKey: KeyJson, modulusBytes: number) {
    this.#client = client;
    this.#kmsKeyId = kmsKeyId;
    this.publicKey = publicKey;
    this.keyId = keyIdOf(publicKey);
    this.source = `aws-kms:///${kmsKeyId}`;
    this.#modulusBytes = modulusBytes;
  }

  /** Fetches the public key once, through the shared client factory (endpoint, credentials, retries). */
  static async create(kmsKeyId: string, config: { region?: string; profile?: string } = {}): Promise<KmsSigner> {
    const client = new AwsClients(config.profile === undefined ? {} : { profile: config.profile }).kms(config.region);
    const response = await kmsCall(kmsKeyId, () => client.send(new GetPublicKeyCommand({ KeyId: kmsKeyId })));
    if (!response.PublicKey || !response.KeySpec?.startsWith('RSA_') || !response.SigningAlgorithms?.includes(kmsSigningAlgorithm)) {
      throw new BrlError(`KMS key ${kmsKeyId} (${response.KeySpec ?? 'unknown spec'}) cannot sign with ${kmsSigningAlgorithm}`, {
        hint: 'use an asymmetric KMS key with key usage SIGN_VERIFY and an RSA key spec',
        exitCode: ExitCode.badInput,
        code: 'KMS_KEY_UNSUITABLE',
      });
    }
    const publicKey = createPublicKey({ key: Buffer.from(response.PublicKey), format: 'der', type: 'spki' });
    const modulusBits = publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
    return new KmsSigner(client, kmsKeyId, keyJsonFromPublicKey(publicKey), Math.ceil(modulusBits / 8));
  }

  async sign(data: Uint8Array, scheme?: SignatureScheme): Promise<Uint8Array> {
    const digest = createHash('sha256').update(data).digest();
    // Only RSA keys get this far (create refuses others), and every RSA KMS key also signs PKCS#1 v1.5.
    const algorithm: SigningAlgorithmSpec = scheme === undefined ? kmsSigningAlgorithm : kmsAlgorithmOf[scheme];
    const response = await kmsCall(this.#kmsKeyId, () =>
      this.#client.send(new SignCommand({ KeyId: this.#kmsKeyId, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: algorithm })),
    );
    if (!response.Signature) throw new Error(`KMS returned no signature for ${this.#kmsKeyId}`);
    return padToModulus(response.Signature, this.#modulusBytes);
  }

  toJSON(): { keyId: string; source: string } {
    return { keyId: this.keyId, source: this.source };
  }
}

/** KMS may drop leading zero bytes; strict verifiers (ring, so tough) need the full modulus length. */
export function padToModulus(signature: Uint8Array, modulusBytes: number): Uint8Array {
  if (signature.length >= modulusBytes) return signature;
  const padded = new Uint8Array(modulusBytes);
  padded.set(signature, modulusBytes - signature.length);
  return padded;
}

async function kmsCall<T>(kmsKeyId: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const name = (error as { name?: string }).name ?? 'Error';
    if (name === 'UnrecognizedClientException' || name === 'InvalidSignatureException' || name === 'ExpiredTokenException') {
      throw new BrlError(`KMS refused the AWS credentials for ${kmsKeyId}: ${name}: ${(error as Error).message}`, {
        hint: 'check AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (a wrong secret fails the signature check)',
        exitCode: ExitCode.failure,
        code: 'KMS_CREDENTIALS',
        cause: error,
      });
    }
    if (name === 'NotFoundException' || name === 'AccessDeniedException' || name === 'DisabledException' || name === 'InvalidKeyUsageException' || name === 'KMSInvalidStateException') {
      throw new BrlError(`KMS key ${kmsKeyId}: ${name}: ${(error as Error).message}`, {
        hint: 'check the key ID or alias, its region, its state and your IAM permissions (kms:GetPublicKey, kms:Sign)',
        exitCode: name === 'NotFoundException' ? ExitCode.notFound : ExitCode.failure,
        code: 'KMS_ERROR',
        cause: error,
      });
    }
    throw new BrlError(`KMS request for ${kmsKeyId} failed: ${(error as Error).message}`, {
      hint: 'check network access to KMS, AWS credentials and AWS_REGION',
      exitCode: ExitCode.network,
      code: 'KMS_UNAVAILABLE',
      cause: error,
    });
  }
}
