// Reproducible ext4 and erofs images from staged trees: pinned UUIDs, hash seeds and every timestamp.
import { execFile } from 'node:child_process';
import { rm, truncate, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { BrlError, ExitCode } from '../core/errors.ts';
import { walkTree } from './tree.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;

export interface Ext4Options {
  uuid: string;
  epoch: number;
  sizeMiB: number;
  /** Layout flags for mkfs.ext4, extended options (-E, which mke2fs takes only once) apart. */
  profile: Ext4Profile;
  /** SELinux label per tree path (no leading slash; '' is the root directory). */
  labels?: Map<string, string>;
  /** Shrink to the minimum with resize2fs -M. */
  shrink: boolean;
}

export interface Ext4Profile {
  args: string[];
  extended: string[];
}

/** Newer upstream's root options: no journal, 4 KiB blocks, 4 MiB stripes, no backup superblocks. */
export const rootExt4: Ext4Profile = {
  args: ['-b', '4096', '-m', '0', '-O', '^has_journal,^resize_inode,sparse_super2'],
  extended: ['lazy_itable_init=0', 'stride=1024', 'stripe_width=1024', 'num_backup_sb=0'],
};
export const bootExt4: Ext4Profile = { args: ['-b', '4096', '-m', '0', '-O', '^has_journal'], extended: ['lazy_itable_init=0'] };
export const privateExt4: Ext4Profile = { args: ['-b', '4096', '-i', '4096', '-I', '256'], extended: ['lazy_itable_init=0'] };
export const dataExt4: Ext4Profile = { args: ['-b', '4096', '-m', '0'], extended: ['lazy_itable_init=0'] };

/** The tool environment that pins every timestamp e2fsprogs would otherwise take from the clock. */
function e2fsEnv(epoch: number): NodeJS.ProcessEnv {
  return { ...process.env, E2FSPROGS_FAKE_TIME: String(epoch), SOURCE_DATE_EPOCH: String(epoch), LC_ALL: 'C' };
}

export class FilesystemTooSmall extends Error {}

/**
 * Makes `imagePath` from `tree`. mkfs.ext4 -d copies each file's ctime, which cannot be set on the
 * staging tree, so debugfs rewrites every inode's ctime (and applies SELinux labels) afterwards.
 * Throws FilesystemTooSmall when the tree does not fit `sizeMiB`.
 */
export async function makeExt4(imagePath: string, tree: string | undefined, options: Ext4Options): Promise<void> {
  await writeFile(imagePath, '');
  await truncate(imagePath, options.sizeMiB * MiB);
  const args = [
    '-q', '-F', '-t', 'ext4', ...options.profile.args,
    '-U', options.uuid, '-E', [...options.profile.extended, `hash_seed=${options.uuid}`, 'root_owner=0:0'].join(','),
    ...(tree === undefined ? [] : ['-d', tree]),
    imagePath,
  ];
  try {
    await run('mkfs.ext4', args, { env: e2fsEnv(options.epoch), maxBuffer: 16 * MiB });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    if (/No space left|Could not allocate|too small|not enough space|Inode table|Could not allocate inode/i.test(stderr)) {
      throw new FilesystemTooSmall(stderr.trim());
    }
    throw new BrlError(`mkfs.ext4 failed for ${imagePath}: ${stderr.trim() || String(error)}`, {
      exitCode: ExitCode.buildFailed,
      code: 'MKFS_FAILED',
    });
  }
  if (tree !== undefined) await pinInodes(imagePath, tree, options);
  if (options.shrink) {
    await run('resize2fs', ['-M', imagePath], { env: e2fsEnv(options.epoch) }).catch((error: { stderr?: string }) => {
      throw new BrlError(`resize2fs -M failed for ${imagePath}: ${error.stderr?.trim() ?? String(error)}`, {
        exitCode: ExitCode.buildFailed,
        code: 'RESIZE_FAILED',
      });
    });
  }
}

async function pinInodes(imagePath: string, tree: string, options: Ext4Options): Promise<void> {
  const entries = await walkTree(tree);
  const lines: string[] = [];
  for (const path of ['', ...entries.map((entry) => entry.path)]) {
    const quoted = debugfsPath(path);
    lines.push(`sif ${quoted} ctime @${options.epoch}`);
    const label = options.labels?.get(path);
    if (label !== undefined) lines.push(`ea_set ${quoted} security.selinux ${label}`);
  }
  lines.push(`sif /lost+found ctime @${options.epoch}`, '');
  const scriptPath = `${imagePath}.debugfs`;
  await writeFile(scriptPath, lines.join('\n'));
  const { stderr } = await run('debugfs', ['-w', '-f', scriptPath, imagePath], { env: e2fsEnv(options.epoch), maxBuffer: 64 * MiB });
  const problems = stderr.split('\n').filter((line) => line !== '' && !/^debugfs \d/.test(line));
  if (problems.length > 0) {
    throw new BrlError(`debugfs could not pin times or labels in ${imagePath}: ${problems.slice(0, 5).join('; ')}`, {
      exitCode: ExitCode.buildFailed,
      code: 'DEBUGFS_FAILED',
    });
  }
  await rm(scriptPath);
}

/** debugfs takes a quoted argument literally, except that `""` stands for one quote. */
function debugfsPath(path: string): string {
  if (path.includes('\n')) {
    throw new BrlError(`cannot label /${JSON.stringify(path).slice(1, -1)}: file names with newlines are not supported in images`, {
      exitCode: ExitCode.buildFailed,
      code: 'BAD_FILE_NAME',
    });
  }
  return `"/${path.replaceAll('"', '""')}"`;
}

/**
 * Bytes `tree` occupies as ext4 (data plus metadata): built at `generousMiB` and measured from the
 * superblock's block counts. Used to say by how much a root is too big.
 */
export async function ext4UsedBytes(imagePath: string, tree: string, options: Omit<Ext4Options, 'sizeMiB' | 'shrink'>, generousMiB: number): Promise<number> {
  await makeExt4(imagePath, tree, { ...options, sizeMiB: generousMiB, shrink: false });
  const { stdout } = await run('dumpe2fs', ['-h', imagePath], { env: e2fsEnv(options.epoch) });
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)$`, 'm').exec(stdout)?.[1] ?? Number.NaN);
  return (field('Block count') - field('Free blocks')) * field('Block size');
}

export interface ErofsOptions {
  uuid: string;
  epoch: number;
  fileContexts?: string;
}

/** An lz4hc-compressed erofs image with fixed UUID and timestamps, all files owned by root. */
export async function makeErofs(imagePath: string, tree: string, options: ErofsOptions): Promise<void> {
  const args = [
    '--quiet', '--all-root', '-T', String(options.epoch), '-U', options.uuid, '-zlz4hc,12', '-C', '262144',
    ...(options.fileContexts === undefined ? [] : [`--file-contexts=${options.fileContexts}`]),
    imagePath, tree,
  ];
  try {
    await run('mkfs.erofs', args, { env: { ...process.env, SOURCE_DATE_EPOCH: String(options.epoch), LC_ALL: 'C' }, maxBuffer: 16 * MiB });
  } catch (error) {
    throw new BrlError(`mkfs.erofs failed for ${imagePath}: ${(error as { stderr?: string }).stderr?.trim() ?? String(error)}`, {
      exitCode: ExitCode.buildFailed,
      code: 'MKFS_FAILED',
    });
  }
}
