// Reads a stopped VM's journal the way an operator would after pulling its data disk: the data
// partition's /var/log/journal copied out with debugfs, read with the host's journalctl.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export interface JournalEntry {
  unit?: string;
  message: string;
  /** Microseconds since this boot started. */
  monotonic: number;
  bootId: string;
}

/** Copies the journal out of `dataQcow2` (a VM state directory's data disk) into `dir`. */
export function extractJournal(dataQcow2: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const raw = join(dir, 'data.raw');
  execFileSync('qemu-img', ['convert', '-O', 'raw', dataQcow2, raw]);
  const first = /First sector: (\d+)/.exec(execFileSync('sgdisk', ['-i', '1', raw], { encoding: 'utf8' }))?.[1];
  if (first === undefined) throw new Error(`${dataQcow2} has no partition 1`);
  const partition = join(dir, 'data.ext4');
  execFileSync('dd', [`if=${raw}`, `of=${partition}`, 'bs=512', `skip=${first}`, 'status=none']);
  execFileSync('debugfs', ['-R', `rdump /var/log/journal ${dir}`, partition], { stdio: 'ignore' });
  return join(dir, 'journal');
}

/** Every entry of every boot in `journalDir`, oldest boot first. */
export function readJournal(journalDir: string): JournalEntry[] {
  const text = execFileSync('journalctl', ['--directory', journalDir, '--no-pager', '-o', 'json', '--output-fields', 'MESSAGE,_SYSTEMD_UNIT,UNIT,_BOOT_ID'], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .map((entry) => ({
      ...(typeof entry.UNIT === 'string' ? { unit: entry.UNIT } : typeof entry._SYSTEMD_UNIT === 'string' ? { unit: entry._SYSTEMD_UNIT } : {}),
      message: Array.isArray(entry.MESSAGE) ? Buffer.from(entry.MESSAGE as number[]).toString('utf8') : String(entry.MESSAGE ?? ''),
      monotonic: Number(entry.__MONOTONIC_TIMESTAMP),
      bootId: String(entry._BOOT_ID),
    }));
}
