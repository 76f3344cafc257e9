// Where a variant build finds the Secure Boot keys: `[secure-boot]` in brl.toml, or BRL_SECURE_BOOT_KEYS for one build.
import { isAbsolute, join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { loadProjectConfig, projectConfigFileName } from '../core/project-config.ts';
import { readString, readTable, rejectUnknownKeys, tomlKeyError, type TomlDocument } from '../core/toml.ts';
import { parseKeySource, type KeySource } from '../signing/key-source.ts';
import { loadFirmwareCertificates, type FirmwareCertificates, type SigningKeyLocations } from './key-set.ts';

const secureBootKeys = ['keys-dir', 'code-signing-key', 'grub-key'];

/**
 * The key locations for a build that signs its boot path. `BRL_SECURE_BOOT_KEYS` (a key set
 * directory) replaces `keys-dir`; relative paths are from the project directory.
 */
export async function secureBootKeyLocations(projectDir: string, env: NodeJS.ProcessEnv = process.env): Promise<SigningKeyLocations> {
  const doc = await loadProjectConfig(projectDir);
  const fromFile = doc === undefined ? {} : parseSecureBootSection(doc);
  const dir = env.BRL_SECURE_BOOT_KEYS || fromFile.dir;
  if (dir === undefined) {
    throw new BrlError('no Secure Boot keys are configured', {
      hint: `create them with brl keys secure-boot init keys/secure-boot, then set keys-dir = "keys/secure-boot" under [secure-boot] in ${projectConfigFileName} (or BRL_SECURE_BOOT_KEYS)`,
      exitCode: ExitCode.badInput,
      code: 'NO_SECURE_BOOT_KEYS',
    });
  }
  const fromProject = (path: string) => (isAbsolute(path) ? path : join(projectDir, path));
  const resolveSource = (source: KeySource | undefined) => (source?.kind === 'file' ? { ...source, path: fromProject(source.path) } : source);
  const codeSigningKey = resolveSource(fromFile.codeSigningKey);
  const grubKey = resolveSource(fromFile.grubKey);
  return { dir: fromProject(dir), ...(codeSigningKey === undefined ? {} : { codeSigningKey }), ...(grubKey === undefined ? {} : { grubKey }) };
}

function parseSecureBootSection(doc: TomlDocument): { dir?: string; codeSigningKey?: KeySource; grubKey?: KeySource } {
  const table = readTable(doc, doc.data, 'secure-boot');
  if (table === undefined) return {};
  rejectUnknownKeys(doc, table, secureBootKeys, 'secure-boot.');
  const keySource = (key: string): KeySource | undefined => {
    const text = readString(doc, table, key, 'secure-boot.');
    if (text === undefined) return undefined;
    try {
      return parseKeySource(text);
    } catch (error) {
      throw tomlKeyError(doc, `secure-boot.${key}`, (error as Error).message);
    }
  };
  const dir = readString(doc, table, 'keys-dir', 'secure-boot.');
  const codeSigningKey = keySource('code-signing-key');
  const grubKey = keySource('grub-key');
  return { ...(dir === undefined ? {} : { dir }), ...(codeSigningKey === undefined ? {} : { codeSigningKey }), ...(grubKey === undefined ? {} : { grubKey }) };
}

/** The certificates a VM's firmware enrolls: from `keysDir`, else from the project's settings. */
export async function firmwareCertificatesFor(projectDir: string, keysDir?: string, env: NodeJS.ProcessEnv = process.env): Promise<FirmwareCertificates> {
  return loadFirmwareCertificates(keysDir ?? (await secureBootKeyLocations(projectDir, env)).dir);
}
