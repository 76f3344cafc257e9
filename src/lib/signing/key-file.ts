// Private key files: generated with 0600 permissions, refused when others could read them.
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { BrlError, ExitCode, errnoCode, fileError } from '../core/errors.ts';
import { makeParentDir, readUserText, writeError } from '../core/fs.ts';
import { PrivateKeySigner } from './pem-signer.ts';

export const generatedKeyTypes = ['rsa', 'ed25519', 'ecdsa'] as const;
export type GeneratedKeyType = (typeof generatedKeyTypes)[number];

/** Parses PEM text (PKCS#8, PKCS#1 or SEC1); encrypted keys are refused because nothing could prompt. */
export function parsePrivateKeyPem(pem: string, source: string): KeyObject {
  if (/ENCRYPTED/.test(pem)) {
    throw new BrlError(`${source}: the private key is encrypted`, {
      hint: 'store the key unencrypted in a file only you can read, or use KMS',
      exitCode: ExitCode.badInput,
      code: 'ENCRYPTED_KEY',
    });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new BrlError(`${source}: not a PEM private key`, {
      hint: 'expected PKCS#8 ("BEGIN PRIVATE KEY"), PKCS#1 ("BEGIN RSA PRIVATE KEY") or SEC1 ("BEGIN EC PRIVATE KEY")',
      exitCode: ExitCode.badInput,
      code: 'BAD_KEY',
    });
  }
  const type = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (!(type === 'rsa' || type === 'ed25519' || (type === 'ec' && curve === 'prime256v1'))) {
    throw new BrlError(`${source}: key type ${type}${curve ? ` (${curve})` : ''} is not supported`, {
      hint: 'use an RSA, Ed25519 or ECDSA P-256 key',
      exitCode: ExitCode.badInput,
      code: 'UNSUPPORTED_KEY',
    });
  }
  return key;
}

/** Loads a signer from a PEM file, refusing files that group or others can access. */
export async function loadKeyFile(path: string): Promise<PrivateKeySigner> {
  const absolute = resolve(path);
  let stats;
  try {
    stats = await stat(absolute);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') {
      throw new BrlError(`key file ${absolute} does not exist`, {
        hint: 'create one with brl repo root gen-key, or fix signing_keys in Infra.toml',
        exitCode: ExitCode.notFound,
        code: 'KEY_NOT_FOUND',
      });
    }
    throw fileError(error, absolute, { what: 'key file' }) ?? error;
  }
  if (stats.isDirectory()) {
    throw new BrlError(`key file ${absolute} is a directory, not a file`, { exitCode: ExitCode.badInput, code: 'IS_A_DIRECTORY' });
  }
  const mode = stats.mode;
  if ((mode & 0o077) !== 0) {
    throw new BrlError(`key file ${absolute} has mode ${(mode & 0o777).toString(8).padStart(4, '0')}: a private key must not be readable or writable by group or others`, {
      hint: `chmod 600 ${absolute}`,
      exitCode: ExitCode.badInput,
      code: 'KEY_FILE_PERMISSIONS',
    });
  }
  return new PrivateKeySigner(parsePrivateKeyPem(await readUserText(absolute, { what: 'key file' }), absolute), `file://${absolute}`);
}

/** Generates a key and writes it as PKCS#8 PEM with mode 0600; never overwrites. */
export async function generateKeyFile(path: string, type: GeneratedKeyType, options: { rsaBits?: number } = {}): Promise<PrivateKeySigner> {
  const absolute = resolve(path);
  const { privateKey } =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: options.rsaBits ?? 3072, publicExponent: 65537 })
      : type === 'ecdsa'
        ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
        : generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  await makeParentDir(absolute);
  let handle;
  try {
    handle = await open(absolute, 'wx', 0o600);
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') {
      throw new BrlError(`key file ${absolute} already exists`, {
        hint: 'choose another path; brl never overwrites a private key',
        exitCode: ExitCode.conflict,
        code: 'KEY_EXISTS',
      });
    }
    throw writeError(error, absolute) ?? error;
  }
  try {
    // The umask may have widened nothing but could have narrowed; pin 0600 either way.
    await handle.chmod(0o600);
    await handle.writeFile(pem);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return new PrivateKeySigner(privateKey, `file://${absolute}`);
}
