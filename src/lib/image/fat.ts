// Reproducible FAT images (the EFI system partition): mkfs.fat with a fixed volume id, files copied in with mtools at a pinned time.
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';

const run = promisify(execFile);

export interface FatFile {
  /** Host file to copy. */
  source: string;
  /** Path inside the FAT, `/`-separated, without a leading slash (e.g. `EFI/BOOT/BOOTX64.EFI`). */
  target: string;
}

export interface FatImageOptions {
  sizeKiB: number;
  /** 8 hex digits (image-layout.md §11: the first 8 of H("efi-vfat")). */
  volumeId: string;
  /** Every directory entry's time: mtools takes it from SOURCE_DATE_EPOCH. */
  epoch: number;
  files: readonly FatFile[];
}

/**
 * Writes a FAT image of `sizeKiB` at `path`. With a given volume id and no label mkfs.fat takes
 * nothing from the clock or randomness (`--invariant` would also replace the volume id with a
 * constant); `mmd`/`mcopy` stamp entries with SOURCE_DATE_EPOCH. Directories are made in sorted
 * order, so two runs give identical bytes.
 */
export async function makeFatImage(path: string, options: FatImageOptions): Promise<void> {
  if (!/^[0-9a-f]{8}$/.test(options.volumeId)) throw new Error(`FAT volume id must be 8 lowercase hex digits, got ${options.volumeId}`);
  await rm(path, { force: true });
  // upstream: mkfs.vfat -I -S 512 -i <volid> <img> <KiB>
  await tool('mkfs.fat', ['-C', '-I', '-S', '512', '-i', options.volumeId, path, String(options.sizeKiB)]);
  const env = { ...process.env, SOURCE_DATE_EPOCH: String(options.epoch), MTOOLS_SKIP_CHECK: '1', MTOOLSRC: '/dev/null' };
  const dirs = new Set<string>();
  for (const file of options.files) {
    const parts = file.target.split('/');
    for (let depth = 1; depth < parts.length; depth += 1) dirs.add(parts.slice(0, depth).join('/'));
  }
  const sortedDirs = [...dirs].sort();
  if (sortedDirs.length > 0) await tool('mmd', ['-i', path, ...sortedDirs.map((dir) => `::/${dir}`)], env);
  for (const file of [...options.files].sort((a, b) => (a.target < b.target ? -1 : 1))) {
    await tool('mcopy', ['-i', path, '-D', 'o', file.source, `::/${file.target}`], env);
  }
}

async function tool(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  try {
    await run(command, args, { env });
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') {
      throw new BrlError(`${command} is not installed; it writes the EFI system partition's FAT`, {
        hint: `install ${command === 'mkfs.fat' ? 'dosfstools' : 'mtools'} (apt-get install dosfstools mtools)`,
        exitCode: ExitCode.missingTool,
        code: 'MISSING_HOST_TOOL',
      });
    }
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new BrlError(`${command} ${args.join(' ')} failed: ${stderr.trim() || String(error)}`, { exitCode: ExitCode.buildFailed, code: 'FAT_FAILED' });
  }
}
