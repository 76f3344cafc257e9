// Reads single files out of an ext4 filesystem inside a disk image through debugfs, at a byte offset
// (for files larger than `ext4-read.ts` reads natively, such as a kernel).
import { execFile } from 'node:child_process';

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
