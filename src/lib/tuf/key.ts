// TUF public keys: their JSON form, key IDs, and signature checks with node:crypto.
import { createHash, createPublicKey, verify as cryptoVerify, constants, type KeyObject } from 'node:crypto';
import { canonicalize, type JsonObject } from './canonical-json.ts';

/** A key as root.json lists it; extra fields are kept because the key ID covers them. */
export interface KeyJson extends JsonObject {
  keytype: string;
  scheme: string;
  keyval: { public: string } & JsonObject;
}

export const keyTypes = ['rsa', 'ed25519', 'ecdsa'] as const;
export type KeyType = (typeof keyTypes)[number];

/** keyid = lowercase hex SHA-256 of the key's canonical JSON, PEM strings byte for byte. */
export function keyIdOf(key: KeyJson): string {
  return createHash('sha256').update(canonicalize(key)).digest('hex');
}

/**
 * Whether `keyId` names `key`. brl (like tough and tuftool) hashes the whole key object; python-tuf
 * and tuf-on-ci hash only keytype, scheme and keyval, so keys with extra fields carry that ID.
 * Either names the same key material, so both are accepted.
 */
export function keyIdMatches(keyId: string, key: KeyJson): boolean {
  if (keyIdOf(key) === keyId) return true;
  const core = { keytype: key.keytype, scheme: key.scheme, keyval: key.keyval };
  return Object.keys(key).length > 3 && keyIdOf(core as KeyJson) === keyId;
}

const spkiPemHeader = '-----BEGIN PUBLIC KEY-----';
// DER prefixes that turn a raw key into SubjectPublicKeyInfo.
const ed25519SpkiPrefix = Buffer.from('302a300506032b6570032100', 'hex');
const p256SpkiPrefix = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

/** The TUF key JSON for a public key, in the forms tough and tuf-js both accept. */
export function keyJsonFromPublicKey(publicKey: KeyObject): KeyJson {
  const spkiPem = () => (publicKey.export({ type: 'spki', format: 'pem' }) as string).trimEnd();
  switch (publicKey.asymmetricKeyType) {
    case 'rsa':
      return { keytype: 'rsa', scheme: 'rsassa-pss-sha256', keyval: { public: spkiPem() } };
    case 'ed25519': {
      const der = publicKey.export({ type: 'spki', format: 'der' });
      return { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: der.subarray(ed25519SpkiPrefix.length).toString('hex') } };
    }
    case 'ec':
      if (publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
        throw new Error(`unsupported EC curve ${publicKey.asymmetricKeyDetails?.namedCurve}; TUF keys here are P-256`);
      }
      return { keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyval: { public: spkiPem() } };
    default:
      throw new Error(`unsupported key type ${publicKey.asymmetricKeyType}`);
  }
}

/** Why a key cannot be used, or undefined when it can. */
export function unsupportedKeyReason(key: KeyJson): string | undefined {
  const supported =
    (key.keytype === 'rsa' && key.scheme === 'rsassa-pss-sha256') ||
    (key.keytype === 'ed25519' && key.scheme === 'ed25519') ||
    ((key.keytype === 'ecdsa' || key.keytype === 'ecdsa-sha2-nistp256') && key.scheme === 'ecdsa-sha2-nistp256');
  if (!supported) return `unsupported keytype/scheme ${key.keytype}/${key.scheme}`;
  if (key.keytype === 'rsa' && !key.keyval.public.startsWith(spkiPemHeader)) return 'RSA keys must be SPKI PEM';
  return undefined;
}

const publicKeyCache = new WeakMap<KeyJson, KeyObject>();

/** The node:crypto public key; throws on a malformed key. */
export function publicKeyObject(key: KeyJson): KeyObject {
  const cached = publicKeyCache.get(key);
  if (cached) return cached;
  const text = key.keyval.public;
  let keyObject: KeyObject;
  if (text.startsWith(spkiPemHeader)) {
    keyObject = createPublicKey(text);
  } else if (/^[0-9a-f]+$/i.test(text)) {
    const prefix = key.keytype === 'ed25519' ? ed25519SpkiPrefix : p256SpkiPrefix;
    keyObject = createPublicKey({ key: Buffer.concat([prefix, Buffer.from(text, 'hex')]), format: 'der', type: 'spki' });
  } else {
    throw new Error('public key is neither SPKI PEM nor hex');
  }
  publicKeyCache.set(key, keyObject);
  return keyObject;
}

/** RSA-PSS with MGF1-SHA-256 and a 32-byte salt, the scheme tough and tuf-js use. */
export const rsaPssOptions = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } as const;

/** True when `signatureHex` is a valid signature by `key` over `data`. Never throws on bad input. */
export function verifyWithKey(key: KeyJson, data: Uint8Array, signatureHex: string): boolean {
  if (unsupportedKeyReason(key) !== undefined || !/^[0-9a-f]*$/i.test(signatureHex)) return false;
  try {
    const publicKey = publicKeyObject(key);
    const signature = Buffer.from(signatureHex, 'hex');
    if (key.keytype === 'rsa') return cryptoVerify('sha256', data, { key: publicKey, ...rsaPssOptions }, signature);
    if (key.keytype === 'ed25519') return cryptoVerify(null, data, publicKey, signature);
    return cryptoVerify('sha256', data, publicKey, signature);
  } catch {
    return false;
  }
}
