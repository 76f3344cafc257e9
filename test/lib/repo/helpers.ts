// Shared fixtures for repo tests: keys, a signed root, small fake variant images, a built repository.
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyFile, type GeneratedKeyType } from '../../../src/lib/signing/key-file.ts';
import type { Signer } from '../../../src/lib/signing/signer.ts';
import { addRootKey, editRootFile, initRootFile, setRoleThreshold, setRootExpires, signRootFile } from '../../../src/lib/repo/root-file.ts';
import { roleNames } from '../../../src/lib/tuf/metadata.ts';
import { findBuildImages, type BuildImages } from '../../../src/lib/repo/build-images.ts';
import { buildRepository, type BuildResult } from '../../../src/lib/repo/build.ts';
import { defaultExpirationPolicy } from '../../../src/lib/repo/policy.ts';
import { resolveWavePolicy } from '../../../src/lib/repo/policy.ts';
import { nowSeconds } from '../../../src/lib/tuf/time.ts';
import { Updater } from 'tuf-js';

export function tempDir(prefix = 'brl-repo-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function makeKey(dir: string, name: string, type: GeneratedKeyType = 'ed25519'): Promise<Signer> {
  return generateKeyFile(join(dir, 'keys', `${name}.pem`), type, { rsaBits: 2048 });
}

/** A root with `signer` in every role, thresholds 1, expiring in a year, signed. */
export async function makeRoot(dir: string, signer: Signer, name = 'root.json'): Promise<string> {
  const path = join(dir, 'roles', name);
  mkdirSync(join(dir, 'roles'), { recursive: true });
  await initRootFile(path, nowSeconds());
  await editRootFile(path, (signed) => {
    setRootExpires(signed, nowSeconds() + 365 * 86_400);
    for (const role of roleNames) setRoleThreshold(signed, role, 1);
    addRootKey(signed, signer.publicKey, []);
  });
  await signRootFile(path, [signer]);
  return path;
}

/** Small files named like a variant build's outputs (`<name>-<variant>-<arch>-<version>-<build>-…`). */
export function makeImages(dir: string, version = '1.0.0', variant = 'dev', arch = 'x86_64', build = 'abcdef12'): string {
  const imagesDir = join(dir, `images-${version}`);
  mkdirSync(imagesDir, { recursive: true });
  const prefix = `bottlerocket-${variant}-${arch}-${version}-${build}`;
  for (const suffix of ['-boot.ext4.lz4', '-root.ext4.lz4', '-root.verity.lz4', '.img.lz4']) {
    writeFileSync(join(imagesDir, `${prefix}${suffix}`), `${prefix}${suffix} contents\n`.repeat(100));
  }
  return imagesDir;
}

export interface BuiltRepo {
  dir: string;
  outdir: string;
  rootPath: string;
  signer: Signer;
  images: BuildImages;
  result: BuildResult;
}

export async function buildSignedRepo(options: { dir?: string; signer?: Signer; rootPath?: string; version?: string; sign?: boolean; now?: number } = {}): Promise<BuiltRepo> {
  const dir = options.dir ?? tempDir();
  const signer = options.signer ?? (await makeKey(dir, 'signing'));
  const rootPath = options.rootPath ?? (await makeRoot(dir, signer));
  const images = await findBuildImages(makeImages(dir, options.version ?? '1.0.0'), 'dev', 'x86_64');
  const outdir = join(dir, 'repo');
  const now = options.now ?? nowSeconds();
  const result = await buildRepository({
    variant: 'dev',
    arch: 'x86_64',
    repo: { name: 'default' },
    outdir,
    rootPath,
    images,
    migrations: {},
    wavePolicy: await resolveWavePolicy('default'),
    expirationPolicy: defaultExpirationPolicy,
    now,
    releaseStart: now,
    ...(options.sign === false ? {} : { signers: [signer] }),
  });
  return { dir, outdir, rootPath, signer, images, result };
}

/** The independent client: tuf-js's Updater against `baseUrl`, trusting `rootBytes`. */
export async function tufJsClient(baseUrl: string, rootBytes: Buffer | string, metadataDir = tempDir('brl-tufjs-')): Promise<{ updater: Updater; metadataDir: string; targetDir: string }> {
  writeFileSync(join(metadataDir, 'root.json'), rootBytes);
  const targetDir = tempDir('brl-tufjs-targets-');
  const updater = new Updater({
    metadataDir,
    metadataBaseUrl: `${baseUrl}dev/x86_64`,
    targetBaseUrl: `${baseUrl}targets`,
    targetDir,
    config: { fetchRetries: 0, fetchTimeout: 5000 },
  });
  return { updater, metadataDir, targetDir };
}
