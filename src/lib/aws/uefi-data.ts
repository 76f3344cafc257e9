// The UefiData a Secure Boot AMI registers with: PK, KEK and db of the key set the build signed its boot path for.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { readUserText } from '../core/fs.ts';
import { assertUefiDataFits, decodeAwsUefiData, secureBootUefiData } from '../secure-boot/aws-uefi-data.ts';
import { keySetFiles, loadFirmwareCertificates, type FirmwareCertificates } from '../secure-boot/key-set.ts';
import { secureBootKeyLocations } from '../secure-boot/settings.ts';

export interface UefiDataRequest {
  projectDir: string;
  variant: string;
  /** The boot path is signed (`AmiPublishPlan.uefiSecureBoot`); an unsigned one registers no UEFI data. */
  signed: boolean;
  /** A ready blob (`--uefi-data`) instead of one made from the key set. */
  uefiDataPath?: string | undefined;
  /** SHA-256 of the db certificate the build signed for (build-manifest.json), checked against the key set's. */
  dbCertificateSha256?: string | undefined;
  /** The build's SOURCE_DATE_EPOCH: the variables' write time; without one the time stays all zero. */
  sourceDateEpoch?: number | undefined;
  env?: NodeJS.ProcessEnv;
}

export interface UefiData {
  /** The base64 "AMZNUEFI" blob for RegisterImage. */
  value: string;
  /** Where it came from: the `--uefi-data` file or the key set directory. */
  source: string;
}

/** The three certificates of the key set brl.toml `[secure-boot]` (or BRL_SECURE_BOOT_KEYS) names; no private key is needed. */
export async function publishCertificates(projectDir: string, variant: string, env: NodeJS.ProcessEnv = process.env): Promise<{ dir: string; certificates: FirmwareCertificates }> {
  const hint = 'publishing needs only the public certificates PK.crt, KEK.crt and db.crt of the key set the build signed with (no private key): '
    + 'set keys-dir under [secure-boot] in brl.toml, or BRL_SECURE_BOOT_KEYS, to a directory holding them';
  let dir: string;
  try {
    dir = resolve((await secureBootKeyLocations(projectDir, env)).dir);
  } catch (error) {
    if (error instanceof BrlError && error.code === 'NO_SECURE_BOOT_KEYS') {
      throw new BrlError(`${variant} signs its boot path, so its AMI carries the Secure Boot certificates as UEFI data, but no key set is configured`, {
        hint,
        exitCode: ExitCode.badInput,
        code: 'NO_SECURE_BOOT_CERTIFICATES',
      });
    }
    throw error;
  }
  const files = [keySetFiles.pkCertificate, keySetFiles.kekCertificate, keySetFiles.dbCertificate];
  const missing = files.filter((file) => !existsSync(join(dir, file)));
  if (missing.length > 0) {
    throw new BrlError(`${dir} has no ${missing.join(', ')}: the UEFI data of ${variant}'s AMI needs PK, KEK and db`, {
      hint,
      exitCode: ExitCode.notFound,
      code: 'NO_SECURE_BOOT_CERTIFICATES',
    });
  }
  return { dir, certificates: await loadFirmwareCertificates(dir) };
}

/**
 * The UefiData for a variant whose boot path is signed, checked before anything is uploaded: a given file must
 * decode, a key set must hold the db certificate the build signed for, and either must fit EC2's 64 KiB.
 * An unsigned variant gets none, and refuses a given file.
 */
export async function uefiDataForPublish(request: UefiDataRequest): Promise<UefiData | undefined> {
  if (!request.signed) {
    if (request.uefiDataPath === undefined) return undefined;
    throw new BrlError(`--uefi-data is for variants whose boot path is signed; ${request.variant} registers without UEFI data`, {
      hint: 'turn on uefi-secure-boot under [image-features] and rebuild, or leave --uefi-data out',
      exitCode: ExitCode.usage,
      code: 'UEFI_DATA_UNSIGNED',
    });
  }
  if (request.uefiDataPath !== undefined) {
    const path = resolve(request.uefiDataPath);
    const value = (await readUserText(path, { what: 'UEFI data file' })).trim();
    decodeAwsUefiData(value, path);
    assertUefiDataFits(value, path);
    return { value, source: path };
  }
  const { dir, certificates } = await publishCertificates(request.projectDir, request.variant, request.env);
  const dbSha256 = createHash('sha256').update(certificates.db).digest('hex');
  if (request.dbCertificateSha256 !== undefined && request.dbCertificateSha256 !== dbSha256) {
    throw new BrlError(`${join(dir, keySetFiles.dbCertificate)} (SHA-256 ${dbSha256}) is not the db certificate ${request.variant} was signed for (${request.dbCertificateSha256})`, {
      hint: 'point [secure-boot] keys-dir (or BRL_SECURE_BOOT_KEYS) at the key set of the build, or rebuild the variant with this one; firmware would refuse the image',
      exitCode: ExitCode.badInput,
      code: 'DB_CERTIFICATE_MISMATCH',
    });
  }
  const writtenAt = request.sourceDateEpoch === undefined ? undefined : new Date(request.sourceDateEpoch * 1000);
  const value = secureBootUefiData(certificates, writtenAt);
  assertUefiDataFits(value, dir);
  return { value, source: dir };
}
