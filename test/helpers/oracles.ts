// Independent tools as test oracles, read for their verdict rather than their exit code.
import { execFileSync } from 'node:child_process';
import type { ExecutionContext } from 'ava';

/** `sgdisk -v`'s report on a disk image. */
export function sgdiskReport(path: string): string {
  return execFileSync('sgdisk', ['-v', path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Fails the test unless `sgdisk -v` finds no problems: sgdisk exits 0 even when it reports a
 * damaged header, overlapping partitions or a bad CRC, so only its report says the table is clean.
 */
export function assertSgdiskClean(t: ExecutionContext, path: string): void {
  t.regex(sgdiskReport(path), /No problems found/, `sgdisk -v ${path}`);
}
