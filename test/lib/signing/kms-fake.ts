// A wire-level AWS KMS endpoint on 127.0.0.1 (JSON 1.1 protocol) holding one real RSA key.
import { createHash, createPublicKey, generateKeyPairSync, privateEncrypt, randomBytes, constants, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { fakeCredentials, sigV4Messages, verifySigV4 } from '../../fakes/aws/sigv4.ts';

export interface KmsFake {
  url: string;
  keyId: string;
  publicKey: KeyObject;
  /** Every X-Amz-Target received, in order. */
  calls: string[];
  /** Signatures handed out, as KMS returned them (possibly shorter than the modulus). */
  signatures: Buffer[];
  close(): Promise<void>;
}

const sha256DigestInfoPrefix = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/** EMSA-PSS-ENCODE (RFC 8017 §9.1.1) of a SHA-256 digest with a 32-byte salt. */
function pssEncode(digest: Buffer, modulusBits: number, salt: Buffer): Buffer {
  const emBits = modulusBits - 1;
  const emLength = Math.ceil(emBits / 8);
  const h = createHash('sha256').update(Buffer.concat([Buffer.alloc(8), digest, salt])).digest();
  const db = Buffer.concat([Buffer.alloc(emLength - salt.length - h.length - 2), Buffer.from([1]), salt]);
  const mask = Buffer.alloc(db.length);
  for (let counter = 0, offset = 0; offset < mask.length; counter += 1, offset += 32) {
    const block = createHash('sha256').update(Buffer.concat([h, Buffer.from([counter >>> 24, (counter >>> 16) & 255, (counter >>> 8) & 255, counter & 255])])).digest();
    block.copy(mask, offset, 0, Math.min(32, mask.length - offset));
  }
  for (let index = 0; index < db.length; index += 1) db[index]! ^= mask[index]!;
  db[0]! &= 0xff >>> (8 * emLength - emBits);
  return Buffer.concat([db, h, Buffer.from([0xbc])]);
}

/**
 * `stripLeadingZeros`: like KMS can, return signatures without their leading zero bytes, and
 * keep signing with fresh salts until one starts with a zero byte, so the short case is exercised.
 */
export async function startKmsFake(options: { stripLeadingZeros?: boolean; keySpec?: string } = {}): Promise<KmsFake> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicKey = createPublicKey(privateKey);
  const keyId = '1234abcd-12ab-34cd-56ef-1234567890ab';
  const calls: string[] = [];
  const signatures: Buffer[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', async () => {
      const raw = Buffer.concat(chunks);
      const reply = (status: number, payload: unknown) => {
        response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'fake' });
        response.end(JSON.stringify(payload));
      };
      // As KMS does: an unknown access key or a wrong signature is refused before the call runs (and is not counted).
      const auth = await verifySigV4(request, raw);
      if (!auth.ok) {
        const type = { missing: 'MissingAuthenticationTokenException', 'unknown-key': 'UnrecognizedClientException', 'signature-mismatch': 'InvalidSignatureException' }[auth.failure];
        return reply(400, { __type: type, message: sigV4Messages[auth.failure] });
      }
      if (auth.scope.service !== 'kms') return reply(400, { __type: 'InvalidSignatureException', message: `Credential should be scoped to correct service: 'kms'.` });
      const target = String(request.headers['x-amz-target'] ?? '');
      calls.push(target);
      const body = JSON.parse(raw.toString('utf8') || '{}') as Record<string, string>;
      if (body.KeyId !== keyId) return reply(400, { __type: 'NotFoundException', message: `Key '${body.KeyId}' does not exist` });
      if (target === 'TrentService.GetPublicKey') {
        return reply(200, {
          KeyId: `arn:aws:kms:us-west-2:111122223333:key/${keyId}`,
          PublicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
          KeySpec: options.keySpec ?? 'RSA_2048',
          KeyUsage: 'SIGN_VERIFY',
          SigningAlgorithms: ['RSASSA_PSS_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_256'],
        });
      }
      if (target === 'TrentService.Sign') {
        const pkcs1 = body.SigningAlgorithm === 'RSASSA_PKCS1_V1_5_SHA_256';
        if (body.MessageType !== 'DIGEST' || !(pkcs1 || body.SigningAlgorithm === 'RSASSA_PSS_SHA_256')) {
          return reply(400, { __type: 'ValidationException', message: 'fake supports DIGEST + RSASSA_PSS_SHA_256 or RSASSA_PKCS1_V1_5_SHA_256 only' });
        }
        const digest = Buffer.from(body.Message ?? '', 'base64');
        let signature: Buffer;
        do {
          // PKCS#1 v1.5: type-1 padding over the SHA-256 DigestInfo (RFC 8017 §9.2).
          signature = pkcs1
            ? privateEncrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([sha256DigestInfoPrefix, digest]))
            : privateEncrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, pssEncode(digest, 2048, randomBytes(32)));
        } while (options.stripLeadingZeros && signature[0] !== 0);
        if (options.stripLeadingZeros) signature = signature.subarray(signature.findIndex((byte) => byte !== 0));
        signatures.push(signature);
        return reply(200, { KeyId: keyId, Signature: signature.toString('base64'), SigningAlgorithm: body.SigningAlgorithm });
      }
      return reply(400, { __type: 'UnknownOperationException', message: target });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    keyId,
    publicKey,
    calls,
    signatures,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Points the AWS SDK at the fake with the credentials it accepts (each ava test file runs in its own process). */
export function useKmsFake(fake: KmsFake): void {
  process.env.AWS_ENDPOINT_URL_KMS = fake.url;
  process.env.AWS_REGION = 'us-west-2';
  process.env.AWS_ACCESS_KEY_ID = fakeCredentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = fakeCredentials.secretAccessKey;
  delete process.env.AWS_PROFILE;
}
