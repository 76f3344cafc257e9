// Reads a deb without installing it: its control stanza and conffiles, and its data tar as a stream
// of entries (`dpkg-deb --ctrl-tarfile` / `--fsys-tarfile`, so any compression dpkg knows works).
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { extract, type Header } from 'tar-stream';
import { BrlError, ExitCode } from '../core/errors.ts';

/** One entry of a tar being read: its header, then its bytes (which must be read or skipped with `resume`). */
export interface TarEntry extends AsyncIterable<Buffer> {
  header: Header;
  resume(): unknown;
}

export interface DebControl {
  /** The control file as shipped, one stanza, without the trailing newline. */
  stanza: string;
  /** Absolute paths the package marks as conffiles. */
  conffiles: string[];
}

export async function readDebControl(debPath: string): Promise<DebControl> {
  let stanza: string | undefined;
  let conffiles: string[] = [];
  await forEachTarEntry(debPath, '--ctrl-tarfile', async (entry) => {
    const name = entry.header.name.replace(/^\.\//, '');
    if (name !== 'control' && name !== 'conffiles') {
      entry.resume();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk);
    const text = Buffer.concat(chunks).toString('utf8');
    if (name === 'control') stanza = text.trimEnd();
    // `remove-on-upgrade` lines name files the package no longer ships; only plain paths are conffiles.
    else conffiles = text.split('\n').map((line) => line.trim()).filter((line) => line.startsWith('/'));
  });
  if (stanza === undefined) throw new BrlError(`${debPath} has no control file`, { exitCode: ExitCode.badInput, code: 'BAD_DEB' });
  return { stanza, conffiles };
}

/** Calls `onEntry` for each entry of the deb's data tar, in archive order; the entry's bytes must be consumed. */
export function forEachDataEntry(debPath: string, onEntry: (entry: TarEntry) => Promise<void>): Promise<void> {
  return forEachTarEntry(debPath, '--fsys-tarfile', onEntry);
}

async function forEachTarEntry(debPath: string, mode: '--ctrl-tarfile' | '--fsys-tarfile', onEntry: (entry: TarEntry) => Promise<void>): Promise<void> {
  const child = spawn('dpkg-deb', [mode, debPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  const entries = extract();
  (child.stdout as Readable).pipe(entries);
  try {
    // tar-stream yields each entry's bytes as Buffers (its types say unknown).
    for await (const entry of entries) await onEntry(entry as unknown as TarEntry);
  } catch (error) {
    child.kill();
    await exited.catch(() => undefined);
    throw error;
  }
  let code: number | null;
  try {
    code = await exited;
  } catch (error) {
    throw new BrlError(`cannot run dpkg-deb: ${(error as Error).message}`, { hint: 'install dpkg (brl doctor lists the host tools)', exitCode: ExitCode.missingTool, code: 'MISSING_TOOL', cause: error });
  }
  if (code !== 0) {
    throw new BrlError(`dpkg-deb ${mode} ${debPath} failed: ${stderr.trim().split('\n').slice(-2).join(' ')}`, { exitCode: ExitCode.badInput, code: 'BAD_DEB' });
  }
}
