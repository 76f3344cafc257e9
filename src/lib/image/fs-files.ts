// Reads single files out of a filesystem inside a disk image (ext4 through debugfs, at a byte offset).
import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';

export type FilesystemKind = 'ext4' | 'erofs' | 'unknown';

/** Recognises the filesystem at `offset` by its superblock magic. */
export async function filesystemKind(imagePath: string, offset: number): Promise<FilesystemKind> {
  const handle = await open(imagePath, 'r');
  try {
    const superblock = Buffer.alloc(1024);
    await handle.read(superblock, 0, 1024, offset + 1024);
    if (superblock.readUInt16LE(56) === 0xef53) return 'ext4';
    if (superblock.readUInt32LE(0) === 0xe0f5e1e2) return 'erofs';
    return 'unknown';
  } finally {
    await handle.close();
  }
}

/**
 * The contents of `filePath` in the ext4 filesystem at `offset` of `imagePath`, or undefined when
 * the file is missing. Uses debugfs read-only, so nothing is mounted or modified.
 */
export function readExt4File(imagePath: string, offset: number, filePath: string): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    execFile('debugfs', ['-R', `cat ${filePath}`, `${imagePath}?offset=${offset}`], { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        reject(error);
        return;
      }
      const messages = stderr.toString('utf8').split('\n').filter((line) => line.trim() !== '' && !/^debugfs \d/.test(line));
      if (messages.some((line) => /not found|File not found|ext2_lookup/i.test(line))) resolve(undefined);
      else if (messages.length > 0) reject(new Error(`debugfs could not read ${filePath} at offset ${offset} of ${imagePath}: ${messages.join('; ')}`));
      else resolve(stdout);
    });
  });
}
