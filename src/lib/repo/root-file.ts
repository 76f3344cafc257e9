// Editing and signing root.json files (tuftool's `root` family), keeping every signed version.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { BrlError, ExitCode, errnoCode, fileError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/fs.ts';
import type { Signer } from '../signing/signer.ts';
import { keyIdOf, type KeyJson } from '../tuf/key.ts';
import { roleNames, serializeEnvelope, type RoleName } from '../tuf/metadata.ts';
import { newRoot, parseRoot, type RootMetadata, type RootSigned } from '../tuf/root.ts';
import { signEnvelope } from '../tuf/sign.ts';
import { formatExpires } from '../tuf/time.ts';
import { signatureReport } from '../tuf/verify.ts';
import type { RepoConfig } from './infra.ts';

export async function readRootFile(path: string): Promise<RootMetadata> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') {
      throw new BrlError(`root file ${path} does not exist`, {
        hint: 'create one with brl repo root init, or pass --root-role-path',
        exitCode: ExitCode.notFound,
        code: 'ROOT_NOT_FOUND',
      });
    }
    throw fileError(error, path, { what: 'root file' }) ?? error;
  }
  return parseRoot(bytes, path);
}

export async function writeRootFile(path: string, root: RootMetadata): Promise<void> {
  await writeFileAtomic(path, serializeEnvelope(root), { mode: 0o644 });
}

/** Earlier versions of a root file live beside it as `<N>.<file name>` (`1.root.json`, `1.default.root.json`). */
export function rootHistoryPath(rootPath: string, version: number): string {
  return join(dirname(rootPath), `${version}.${basename(rootPath)}`);
}

/** A fresh root (`tuftool root init`), refusing to overwrite an existing file. */
export async function initRootFile(path: string, now: number): Promise<RootMetadata> {
  if (existsSync(path)) {
    throw new BrlError(`root file ${path} already exists`, {
      hint: 'edit it with brl repo root add-key/set-threshold/expire, or choose another path',
      exitCode: ExitCode.conflict,
      code: 'ROOT_EXISTS',
    });
  }
  const root = newRoot(formatExpires(now));
  await writeRootFile(path, root);
  return root;
}

export interface RootEditResult {
  path: string;
  version: number;
  /** Set when the edit started a new version because the old one was already fully signed. */
  archivedVersion?: number;
  archivedPath?: string;
}

/**
 * Applies `edit` to the root. Signatures are dropped (they no longer cover the content). A root
 * already signed by its own threshold counts as published: it is kept as `<N>.<file>` and the
 * edit goes into version N+1, so two different roots never share a version.
 */
export async function editRootFile(path: string, edit: (signed: RootSigned) => void): Promise<RootEditResult> {
  const root = await readRootFile(path);
  const result: RootEditResult = { path, version: root.signed.version };
  const report = signatureReport(root, 'root', root.signed);
  if (report.validKeyIds.length >= report.threshold) {
    const archivedPath = rootHistoryPath(path, root.signed.version);
    if (!existsSync(archivedPath)) await copyFile(path, archivedPath);
    result.archivedVersion = root.signed.version;
    result.archivedPath = archivedPath;
    root.signed.version += 1;
    result.version = root.signed.version;
  }
  edit(root.signed);
  await writeRootFile(path, { signatures: [], signed: root.signed });
  return result;
}

export function setRootExpires(signed: RootSigned, expiresAt: number): void {
  signed.expires = formatExpires(expiresAt);
}

export function setRoleThreshold(signed: RootSigned, role: RoleName, threshold: number): void {
  if (!Number.isSafeInteger(threshold) || threshold < 1) {
    throw new BrlError(`threshold ${threshold} for ${role} must be a whole number ≥ 1`, { exitCode: ExitCode.usage, code: 'BAD_THRESHOLD' });
  }
  signed.roles[role].threshold = threshold;
}

/** Adds a key to `roles` (every role when empty); returns its key ID. */
export function addRootKey(signed: RootSigned, key: KeyJson, roles: readonly RoleName[]): string {
  const keyId = keyIdOf(key);
  signed.keys[keyId] = key;
  for (const role of roles.length > 0 ? roles : roleNames) {
    if (!signed.roles[role].keyids.includes(keyId)) signed.roles[role].keyids.push(keyId);
  }
  return keyId;
}

/** Removes a key (by full ID or unique prefix) from `roles`, or entirely when no roles are given. */
export function removeRootKey(signed: RootSigned, keyIdOrPrefix: string, roles: readonly RoleName[]): string {
  const matches = Object.keys(signed.keys).filter((keyId) => keyId.startsWith(keyIdOrPrefix.toLowerCase()));
  if (matches.length !== 1) {
    throw new BrlError(matches.length === 0 ? `root has no key ${keyIdOrPrefix}` : `key ID prefix ${keyIdOrPrefix} matches ${matches.length} keys`, {
      hint: Object.keys(signed.keys).length === 0
        ? 'this root lists no keys yet; add one with brl repo root add-key or gen-key'
        : `its key IDs: ${Object.keys(signed.keys).join(', ')}${matches.length > 1 ? '; give a longer prefix' : ''}`,
      exitCode: matches.length === 0 ? ExitCode.notFound : ExitCode.usage,
      code: 'KEY_NOT_IN_ROOT',
    });
  }
  const keyId = matches[0]!;
  for (const role of roles.length > 0 ? roles : roleNames) {
    signed.roles[role].keyids = signed.roles[role].keyids.filter((id) => id !== keyId);
  }
  if (roleNames.every((role) => !signed.roles[role].keyids.includes(keyId))) delete signed.keys[keyId];
  return keyId;
}

export interface ThresholdStatus {
  signedBy: number;
  threshold: number;
}

export interface RootSignResult {
  path: string;
  version: number;
  keyIds: string[];
  /** This root's own root-role threshold. */
  own: ThresholdStatus;
  /** The previous version's threshold, which a rotation must also meet. */
  previous?: ThresholdStatus & { path: string };
  /** True when every threshold is met, so the root can be published. */
  complete: boolean;
}

/**
 * Adds signatures to a root. A key must be a root key of this version or of the previous one
 * (cross-signing a rotation); anything else is refused before signing.
 */
export async function signRootFile(path: string, signers: readonly Signer[]): Promise<RootSignResult> {
  const root = await readRootFile(path);
  const previousPath = rootHistoryPath(path, root.signed.version - 1);
  const previous = root.signed.version > 1 && existsSync(previousPath) ? await readRootFile(previousPath) : undefined;
  for (const signer of signers) {
    const inOwn = root.signed.roles.root.keyids.includes(signer.keyId);
    const inPrevious = previous?.signed.roles.root.keyids.includes(signer.keyId) ?? false;
    if (!inOwn && !inPrevious) {
      throw new BrlError(`key ${signer.keyId} (${signer.source}) is not a root key of ${path} v${root.signed.version}${previous ? ` or of ${previousPath}` : ''}`, {
        hint: 'add it first with brl repo root add-key --role root, or sign with a listed key',
        exitCode: ExitCode.verifyFailed,
        code: 'KEY_NOT_IN_ROOT',
      });
    }
  }
  const signed = await signEnvelope(root, signers);
  await writeRootFile(path, signed);
  const ownReport = signatureReport(signed, 'root', signed.signed);
  const own = { signedBy: ownReport.validKeyIds.length, threshold: ownReport.threshold };
  const result: RootSignResult = { path, version: signed.signed.version, keyIds: signers.map((signer) => signer.keyId), own, complete: own.signedBy >= own.threshold };
  if (previous) {
    const previousReport = signatureReport(signed, 'root', previous.signed);
    result.previous = { path: previousPath, signedBy: previousReport.validKeyIds.length, threshold: previousReport.threshold };
    result.complete &&= result.previous.signedBy >= result.previous.threshold;
  }
  return result;
}

/** Every version of a root: the history files beside it plus the file itself, oldest first. */
export async function readRootHistory(path: string): Promise<{ version: number; bytes: Buffer }[]> {
  const root = await readRootFile(path);
  const current = await readFile(path);
  const versions: { version: number; bytes: Buffer }[] = [];
  for (let version = 1; version < root.signed.version; version += 1) {
    const historyPath = rootHistoryPath(path, version);
    if (existsSync(historyPath)) versions.push({ version, bytes: await readFile(historyPath) });
  }
  versions.push({ version: root.signed.version, bytes: current });
  return versions;
}

/**
 * The root a repository is checked against: `--root-role-path`, else the configured
 * `root_role_url` (its sha512 checked), else `roles/<repo>.root.json` in the project.
 */
export async function resolveRootPath(config: RepoConfig, options: { rootRolePath?: string; projectDir: string }): Promise<string> {
  if (options.rootRolePath) return options.rootRolePath;
  const local = join(options.projectDir, 'roles', `${config.name}.root.json`);
  if (config.rootRoleUrl && config.rootRoleSha512) {
    const bytes = await fetchRoot(config.rootRoleUrl);
    const actual = createHash('sha512').update(bytes).digest('hex');
    if (actual !== config.rootRoleSha512) {
      throw new BrlError(`root ${config.rootRoleUrl} has sha512 ${actual}, but Infra.toml pins ${config.rootRoleSha512}`, {
        hint: 'check root_role_url and root_role_sha512 in Infra.toml',
        exitCode: ExitCode.verifyFailed,
        code: 'ROOT_SHA512_MISMATCH',
      });
    }
    await writeFileAtomic(local, bytes);
  }
  return local;
}

async function fetchRoot(url: string): Promise<Buffer> {
  if (url.startsWith('file://')) return readFile(new URL(url));
  const response = await fetch(url, { signal: AbortSignal.timeout(100_000) }).catch((error: Error) => {
    throw new BrlError(`cannot fetch ${url}: ${error.message}`, { exitCode: ExitCode.network, code: 'FETCH_FAILED', cause: error });
  });
  if (!response.ok) throw new BrlError(`GET ${url} answered HTTP ${response.status}`, { exitCode: ExitCode.network, code: 'FETCH_FAILED' });
  return Buffer.from(await response.arrayBuffer());
}
