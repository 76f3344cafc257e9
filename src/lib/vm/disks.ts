// The VM's disks in its state directory: a decoded base for `.img.lz4` images and a qcow2 overlay on
// top, so the built image is never written. A persistent VM keeps its overlay across runs.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { BrlError, ExitCode } from '../core/errors.ts';
import type { DiskFormat } from './image.ts';

const run = promisify(execFile);

export interface PreparedDisk {
  /** What QEMU opens: the overlay. */
  overlay: string;
  /** The raw or qcow2 file under the overlay; raw when it can be checked for a GPT. */
  base: string;
  baseFormat: 'raw' | 'qcow2';
}

/** Decodes `source` into `target` once per source version (path, size and mtime); true when it decoded. */
async function decodeLz4(source: string, target: string, shownPath: string): Promise<boolean> {
  const { size, mtimeMs } = await stat(source);
  const stamp = JSON.stringify({ source: resolve(source), size, mtimeMs });
  const stampFile = `${target}.source.json`;
  if (existsSync(target) && existsSync(stampFile) && (await readFile(stampFile, 'utf8')) === stamp) return false;
  await rm(stampFile, { force: true });
  try {
    // lz4 writes zero blocks as holes, so the decoded disk costs only its data.
    await run('lz4', ['-d', '-f', '-q', source, target], { maxBuffer: 1024 * 1024 });
  } catch (error) {
    await rm(target, { force: true });
    const stderr = ((error as { stderr?: string }).stderr ?? '').trim();
    throw new BrlError(`${shownPath} cannot be decoded: ${stderr.split('\n').pop() || 'lz4 failed'}`, {
      hint: /unfinished|truncated|read error/i.test(stderr) ? 'the file is truncated: copy or build it again' : 'is it an .img.lz4 from brl build variant?',
      exitCode: ExitCode.badInput,
      code: 'BAD_IMAGE',
    });
  }
  await writeFile(stampFile, stamp);
  return true;
}

export async function prepareDisk(options: {
  source: string;
  format: DiskFormat;
  stateDir: string;
  name: 'os' | 'data';
  persist: boolean;
}): Promise<PreparedDisk> {
  const { source, format, stateDir, name } = options;
  let base = resolve(source);
  const baseFormat: 'raw' | 'qcow2' = format === 'qcow2' ? 'qcow2' : 'raw';
  let baseChanged = false;
  if (format === 'lz4') {
    base = join(stateDir, `${name}.base.img`);
    baseChanged = await decodeLz4(source, base, source);
  }
  const overlay = join(stateDir, `${name}.qcow2`);
  // A kept overlay is only valid on the base it was made on: a rebuilt image starts it afresh.
  if (options.persist && !baseChanged && existsSync(overlay)) return { overlay, base, baseFormat };
  await rm(overlay, { force: true });
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', baseFormat, '-b', base, overlay]);
  return { overlay, base, baseFormat };
}
