// Signing an image's boot path at build time: GRUB's EFI image made with the project's key and Authenticode-signed, the kernel signed, and GRUB's detached signatures on BOOT.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { BrlError, ExitCode } from '../core/errors.ts';
import { writeFileAtomic } from '../core/fs.ts';
import { signPeImage } from './authenticode.ts';
import { imageGrubKeyPath } from './boot-signatures.ts';
import type { BootSigningKeys } from './key-set.ts';
import { detachedSignature, fingerprint } from './openpgp.ts';

const run = promisify(execFile);

/** What the grub package ships for this (grub.spec: %{efi_kit}), relative to the kit directory. */
const kitFiles = { mkimage: 'grub-mkimage', modulesDir: 'x86_64-efi', embeddedConfig: 'embedded.cfg', moduleList: 'modules' } as const;

/**
 * Makes GRUB's EFI image from the grub package's kit with the project's OpenPGP key embedded and
 * shim lock disabled (there is no shim: firmware checks GRUB against db, GRUB checks the rest with
 * its key), then Authenticode-signs it. grub-mkimage writes a fixed timestamp, so the bytes
 * depend only on the kit and the key.
 */
export async function makeSignedGrubImage(kitDir: string, keys: BootSigningKeys, outPath: string, tempDir: string): Promise<void> {
  for (const file of Object.values(kitFiles)) {
    if (!existsSync(join(kitDir, file))) {
      throw new BrlError(`the grub package's Secure Boot kit has no ${file} (${join(kitDir, file)})`, {
        hint: 'rebuild the grub package (brl build package grub --force); its spec installs the kit under /boot/grub/x86_64-efi-kit',
        exitCode: ExitCode.buildFailed,
        code: 'BAD_BOOTLOADER',
      });
    }
  }
  const work = await mkdtemp(join(tempDir, 'grub-mkimage-'));
  try {
    const publicKey = join(work, 'grub.gpg');
    await writeFile(publicKey, keys.grub.publicKeyFile);
    const unsigned = join(work, 'bootx64.efi');
    const modules = (await readFile(join(kitDir, kitFiles.moduleList), 'utf8')).split(/\s+/).filter(Boolean);
    try {
      await run(join(kitDir, kitFiles.mkimage), [
        '-d', join(kitDir, kitFiles.modulesDir), '-O', 'x86_64-efi', '-o', unsigned, '-p', '/grub',
        '-c', join(kitDir, kitFiles.embeddedConfig), '--pubkey', publicKey, '--disable-shim-lock', ...modules,
      ]);
    } catch (error) {
      throw new BrlError(`grub-mkimage from the grub package failed: ${((error as { stderr?: string }).stderr ?? (error as Error).message).trim()}`, {
        hint: 'rebuild the grub package on this machine (brl build package grub --force): the kit\'s grub-mkimage is built for the build host',
        exitCode: ExitCode.buildFailed,
        code: 'BAD_BOOTLOADER',
        cause: error,
      });
    }
    await writeFileAtomic(outPath, await signPeImage(await readFile(unsigned), keys.codeSigning, 'GRUB\'s EFI image'));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Replaces a kernel (a PE image through its EFI stub) with its Authenticode-signed copy, keeping its mode. */
export async function signKernel(path: string, keys: BootSigningKeys, mode: number): Promise<void> {
  await writeFileAtomic(path, await signPeImage(await readFile(path), keys.codeSigning, path), { mode });
}

/** Writes `<path>.sig`, the detached OpenPGP signature GRUB's pgp verifier looks for beside every file it opens. */
export async function writeGrubSignature(path: string, keys: BootSigningKeys, epoch: number, mode: number): Promise<void> {
  await writeFileAtomic(`${path}.sig`, await detachedSignature(keys.grub.signer, keys.grub.key, await readFile(path), epoch), { mode });
}

/** Puts GRUB's public key into the root tree at `imageGrubKeyPath`, where updog finds it to check an update's BOOT. */
export async function placeGrubKey(rootTree: string, keys: BootSigningKeys): Promise<void> {
  const path = join(rootTree, imageGrubKeyPath);
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await writeFileAtomic(path, keys.grub.publicKeyFile, { mode: 0o644 });
}

/** What the build output and the SBOMs say about the boot path. */
export interface BootSigningSummary {
  signed: boolean;
  /** SHA-256 of the db certificate that firmware must hold. */
  dbCertificateSha256?: string;
  /** The OpenPGP fingerprint of the key embedded in GRUB. */
  grubKeyFingerprint?: string;
}

export function bootSigningSummary(keys: BootSigningKeys | undefined): BootSigningSummary {
  if (keys === undefined) return { signed: false };
  return {
    signed: true,
    dbCertificateSha256: createHash('sha256').update(keys.db).digest('hex'),
    grubKeyFingerprint: fingerprint(keys.grub.key).toString('hex').toUpperCase(),
  };
}
