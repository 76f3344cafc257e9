// Infra.toml `[repo.<name>]`: where a repository's root and keys come from and where it is published.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { loadToml, readString, readTable, rejectUnknownKeys, tomlKeyError, type TomlDocument, type TomlTable } from '../core/toml.ts';
import type { KeySource } from '../signing/key-source.ts';

export interface RepoConfig {
  name: string;
  /** The Infra.toml it came from, if any. */
  configPath?: string;
  rootRoleUrl?: string;
  rootRoleSha512?: string;
  signingKeys?: KeySource;
  rootKeys?: KeySource;
  metadataBaseUrl?: string;
  targetsUrl?: string;
}

const repoKeys = [
  'root_role_url', 'root_role_sha512', 'signing_keys', 'root_keys', 'metadata_base_url', 'targets_url',
  'file_hosting_config_name', 'root_key_threshold', 'pub_key_threshold',
];

export function defaultInfraPath(projectDir: string): string {
  return join(projectDir, 'Infra.toml');
}

/**
 * The `[repo.<name>]` table; a missing Infra.toml (or table) gives an empty config when
 * `required` is false, as pubsys's `repo` tolerates.
 */
export async function loadRepoConfig(infraPath: string, name: string, options: { required?: boolean } = {}): Promise<RepoConfig> {
  if (!existsSync(infraPath)) {
    if (options.required) {
      throw new BrlError(`${infraPath} does not exist`, {
        hint: 'copy Infra.toml.example to Infra.toml and fill in [repo.<name>], or pass --infra-config-path',
        exitCode: ExitCode.notFound,
        code: 'NO_INFRA_CONFIG',
      });
    }
    return { name };
  }
  const doc = await loadToml(infraPath);
  const repos = readTable(doc, doc.data, 'repo') ?? {};
  const table = readTable(doc, repos, name, 'repo.');
  if (table === undefined) {
    if (options.required) {
      throw new BrlError(`${infraPath} has no [repo.${name}] table`, {
        hint: `add [repo.${name}] or choose one of: ${Object.keys(repos).join(', ') || '(none defined)'}`,
        exitCode: ExitCode.notFound,
        code: 'NO_REPO_CONFIG',
      });
    }
    return { name, configPath: infraPath };
  }
  const prefix = `repo.${name}.`;
  rejectUnknownKeys(doc, table, repoKeys, prefix);
  const config: RepoConfig = { name, configPath: infraPath };
  const url = readString(doc, table, 'root_role_url', prefix);
  const sha512 = readString(doc, table, 'root_role_sha512', prefix);
  if ((url === undefined) !== (sha512 === undefined)) {
    throw tomlKeyError(doc, `${prefix}${url === undefined ? 'root_role_sha512' : 'root_role_url'}`, 'root_role_url and root_role_sha512 go together');
  }
  if (sha512 !== undefined && !/^[0-9a-f]{128}$/i.test(sha512)) throw tomlKeyError(doc, `${prefix}root_role_sha512`, 'must be 128 hex digits');
  if (url !== undefined) config.rootRoleUrl = url;
  if (sha512 !== undefined) config.rootRoleSha512 = sha512.toLowerCase();
  for (const [key, field] of [['metadata_base_url', 'metadataBaseUrl'], ['targets_url', 'targetsUrl']] as const) {
    const value = readString(doc, table, key, prefix);
    if (value !== undefined) {
      if (!/^(https?|file):\/\//.test(value)) throw tomlKeyError(doc, `${prefix}${key}`, 'must be an http(s):// or file:// URL');
      config[field] = value;
    }
  }
  const signing = readTable(doc, table, 'signing_keys', prefix);
  if (signing) config.signingKeys = keySourceFromToml(doc, signing, `${prefix}signing_keys.`, dirname(infraPath));
  const rootKeys = readTable(doc, table, 'root_keys', prefix);
  if (rootKeys) config.rootKeys = keySourceFromToml(doc, rootKeys, `${prefix}root_keys.`, dirname(infraPath));
  return config;
}

/** Exactly one of `file = { path }`, `kms = { key_id | available_keys, … }`, `ssm = { parameter }`. */
function keySourceFromToml(doc: TomlDocument, table: TomlTable, prefix: string, baseDir: string): KeySource {
  const kinds = Object.keys(table);
  rejectUnknownKeys(doc, table, ['file', 'kms', 'ssm'], prefix);
  if (kinds.length !== 1) throw tomlKeyError(doc, prefix.slice(0, -1), 'needs exactly one of file, kms or ssm');
  const kind = kinds[0]!;
  const inner = readTable(doc, table, kind, prefix)!;
  const where = `${prefix}${kind}.`;
  if (kind === 'file') {
    rejectUnknownKeys(doc, inner, ['path'], where);
    const path = readString(doc, inner, 'path', where);
    if (path === undefined) throw tomlKeyError(doc, `${where}path`, 'is required');
    return { kind: 'file', path: isAbsolute(path) ? path : resolve(baseDir, path) };
  }
  if (kind === 'ssm') {
    rejectUnknownKeys(doc, inner, ['parameter'], where);
    const parameter = readString(doc, inner, 'parameter', where);
    if (parameter === undefined) throw tomlKeyError(doc, `${where}parameter`, 'is required');
    return { kind: 'ssm', parameter };
  }
  rejectUnknownKeys(doc, inner, ['key_id', 'available_keys', 'key_alias', 'regions', 'key_stack_arns'], where);
  const keyId = readString(doc, inner, 'key_id', where);
  const available = readTable(doc, inner, 'available_keys', where) ?? {};
  const regions = inner.regions;
  const firstRegion = Array.isArray(regions) && typeof regions[0] === 'string' ? regions[0] : undefined;
  if (keyId !== undefined) return { kind: 'kms', keyId, ...(firstRegion ? { region: firstRegion } : {}) };
  const [availableId, region] = Object.entries(available)[0] ?? [];
  if (availableId === undefined) throw tomlKeyError(doc, `${where}key_id`, 'is required (or list available_keys = { "<key id>" = "<region>" })');
  if (typeof region !== 'string') throw tomlKeyError(doc, `${where}available_keys.${availableId}`, 'must be a region name');
  return { kind: 'kms', keyId: availableId, region };
}
