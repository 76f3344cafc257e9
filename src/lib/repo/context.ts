// What every `brl repo` command resolves first: project, Infra.toml entry, root file, keys.
import { createPublicKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { readUserText } from '../core/fs.ts';
import { buildDir, findProjectDir } from '../core/paths.ts';
import { keySourceUrl, openSigner, parseKeySource } from '../signing/key-source.ts';
import type { Signer } from '../signing/signer.ts';
import { keyJsonFromPublicKey, type KeyJson } from '../tuf/key.ts';
import type { RootMetadata } from '../tuf/root.ts';
import { defaultInfraPath, loadRepoConfig, type RepoConfig } from './infra.ts';
import { repoLayout } from './layout.ts';
import { DirectoryReader, readerFor, withSlash, type RepoReader } from './reader.ts';
import { readRootFile, resolveRootPath } from './root-file.ts';

/** The project directory when run inside one; otherwise the working directory. */
export function projectDirOrCwd(): string {
  try {
    return findProjectDir();
  } catch (error) {
    if (error instanceof BrlError) return process.cwd();
    throw error;
  }
}

export interface RepoContext {
  projectDir: string;
  config: RepoConfig;
}

export async function repoContext(options: { repo: string; infraConfigPath?: string | undefined; requireConfig?: boolean }): Promise<RepoContext> {
  const projectDir = projectDirOrCwd();
  const config = await loadRepoConfig(options.infraConfigPath ?? defaultInfraPath(projectDir), options.repo, { required: options.requireConfig ?? false });
  return { projectDir, config };
}

/** `build/repos/<repo>` in the project. */
export function defaultOutdir(projectDir: string, repo: string): string {
  return join(buildDir(projectDir), 'repos', repo);
}

export async function trustedRoot(context: RepoContext, rootRolePath: string | undefined): Promise<{ path: string; root: RootMetadata }> {
  const path = await resolveRootPath(context.config, { projectDir: context.projectDir, ...(rootRolePath ? { rootRolePath } : {}) });
  return { path, root: await readRootFile(path) };
}

/** `--key` sources win; otherwise the repository's configured `signing_keys`. */
export async function openSigners(keys: readonly string[] | undefined, config: RepoConfig): Promise<Signer[]> {
  if (keys && keys.length > 0) return Promise.all(keys.map((key) => openSigner(parseKeySource(key))));
  if (config.signingKeys) return [await openSigner(config.signingKeys)];
  throw new BrlError(`no signing key for repository ${config.name}`, {
    hint: `pass --key PATH|aws-kms:///ID|aws-ssm:///PARAM, or set signing_keys in [repo.${config.name}] of Infra.toml`,
    exitCode: ExitCode.usage,
    code: 'NO_SIGNING_KEY',
  });
}

/**
 * A public key to list in root: a public key PEM file (so co-signers never share private keys),
 * or any key source, whose private half is then only used to derive the public one.
 */
export async function publicKeyFrom(source: string): Promise<{ key: KeyJson; source: string }> {
  if (existsSync(source)) {
    const text = await readUserText(source, { what: 'key file' });
    if (text.includes('-----BEGIN PUBLIC KEY-----')) {
      try {
        return { key: keyJsonFromPublicKey(createPublicKey(text)), source };
      } catch (error) {
        throw new BrlError(`${source}: ${(error as Error).message}`, { exitCode: ExitCode.badInput, code: 'BAD_KEY' });
      }
    }
    // Without this, any other file would be judged as a private key and refused for its mode.
    if (!text.includes('-----BEGIN ')) {
      throw new BrlError(`${source} is not a PEM key file`, {
        hint: 'pass a public key ("BEGIN PUBLIC KEY"), a private key file, or a key URL (aws-kms://…, aws-ssm://…)',
        exitCode: ExitCode.badInput,
        code: 'BAD_KEY',
      });
    }
  }
  const parsed = parseKeySource(source);
  const signer = await openSigner(parsed);
  return { key: signer.publicKey, source: keySourceUrl(parsed) };
}

/** A local repository directory when given, else the published one (metadata_base_url, targets_url). */
export function repoReader(context: RepoContext, options: { dir?: string | undefined; variant: string; arch: string }): RepoReader {
  if (options.dir) {
    const layout = repoLayout(options.dir, options.variant, options.arch);
    return new DirectoryReader(layout.metadataDir, layout.targetsDir);
  }
  const { metadataBaseUrl, targetsUrl } = context.config;
  if (!metadataBaseUrl) {
    throw new BrlError(`no repository location: give a directory, or set metadata_base_url in [repo.${context.config.name}] of Infra.toml`, {
      hint: 'e.g. brl repo validate build/repos/default --variant dev',
      exitCode: ExitCode.usage,
      code: 'NO_REPOSITORY_LOCATION',
    });
  }
  return readerFor(`${withSlash(metadataBaseUrl)}${options.variant}/${options.arch}/`, targetsUrl);
}
