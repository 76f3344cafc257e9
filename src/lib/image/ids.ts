// Deterministic identifiers (GUIDs, fs UUIDs, FAT volume id, verity salt/UUID) from SHA-256 of the build's identity.
import { createHash } from 'node:crypto';
import { BrlError, ExitCode } from '../core/errors.ts';

/** What every identifier of one build is derived from. */
export interface IdContext {
  /** SOURCE_DATE_EPOCH, decimal seconds. */
  sourceDateEpoch: string | number;
  variant: string;
  arch: string;
}

/** H(t) = SHA-256("<SOURCE_DATE_EPOCH>|<variant>|<arch>|<t>"). */
export function idHash(context: IdContext, target: string): Buffer {
  const epoch = String(context.sourceDateEpoch);
  if (!/^\d+$/.test(epoch)) {
    throw new BrlError(`SOURCE_DATE_EPOCH "${epoch}" is not a decimal number of seconds`, {
      exitCode: ExitCode.badInput,
      code: 'BAD_SOURCE_DATE_EPOCH',
      hint: 'set SOURCE_DATE_EPOCH to the commit time, e.g. $(git log -1 --format=%ct)',
    });
  }
  return createHash('sha256').update(`${epoch}|${context.variant}|${context.arch}|${target}`, 'utf8').digest();
}

// Upstream's variant-nibble mapping, so its test vectors apply: 0–7 → 8, 8–b kept, c–f → 8–b.
const VARIANT_NIBBLE: Record<string, string> = {
  0: '8', 1: '8', 2: '8', 3: '8', 4: '8', 5: '8', 6: '8', 7: '8',
  8: '8', 9: '9', a: 'a', b: 'b', c: '8', d: '9', e: 'a', f: 'b',
};

/** A version-4-shaped UUID from a SHA-256 digest (image-layout.md §11). */
export function uuidFromHash(hash: Uint8Array): string {
  const h = Buffer.from(hash).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${VARIANT_NIBBLE[h[16]!]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function derivedUuid(context: IdContext, target: string): string {
  return uuidFromHash(idHash(context, target));
}

/** FAT volume id: the first 8 hex digits of H("efi-vfat"). */
export function fatVolumeId(context: IdContext): string {
  return idHash(context, 'efi-vfat').toString('hex').slice(0, 8);
}

export function veritySalt(context: IdContext): Buffer {
  return idHash(context, 'verity-salt');
}

export function verityUuid(context: IdContext): string {
  return derivedUuid(context, 'verity-uuid');
}
