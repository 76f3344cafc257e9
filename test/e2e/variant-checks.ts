// Independent checks of built variant images: decompress with lz4, cut partitions by offset, run the real tools.
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export type { BuildManifest } from '../../src/lib/variant/build-manifest.ts';
import type { BuildManifest } from '../../src/lib/variant/build-manifest.ts';

export function sh(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
}

export function lz4Decompress(source: string, target: string): void {
  sh('lz4', ['-d', '-q', '-f', source, target]);
}

/** Copies `sizeBytes` from `offset` of a disk into its own file. */
export function cutPartition(disk: string, offset: number, sizeBytes: number, target: string): void {
  const input = openSync(disk, 'r');
  const output = openSync(target, 'w');
  const buffer = Buffer.alloc(4 * 1024 * 1024);
  try {
    for (let done = 0; done < sizeBytes;) {
      const bytes = readSync(input, buffer, 0, Math.min(buffer.length, sizeBytes - done), offset + done);
      if (bytes === 0) break;
      writeSync(output, buffer, 0, bytes);
      done += bytes;
    }
  } finally {
    closeSync(input);
    closeSync(output);
  }
}

export function partitionFile(disk: string, manifest: BuildManifest, key: string, workDir: string, sizeBytes?: number): string {
  const partition = manifest.disks.os.partitions.find((candidate) => candidate.key === key) ?? manifest.disks.data?.partitions.find((candidate) => candidate.key === key);
  if (!partition) throw new Error(`no ${key} in the manifest`);
  const target = join(workDir, `${key}.img`);
  cutPartition(disk, partition.startMiB * 1024 * 1024, sizeBytes ?? partition.sizeMiB * 1024 * 1024, target);
  return target;
}

export function debugfsCat(image: string, path: string): string {
  return sh('debugfs', ['-R', `cat ${path}`, image]);
}

export function regionIsZero(disk: string, offset: number, sizeBytes: number): boolean {
  const input = openSync(disk, 'r');
  const buffer = Buffer.alloc(4 * 1024 * 1024);
  const zero = Buffer.alloc(buffer.length);
  try {
    for (let done = 0; done < sizeBytes;) {
      const bytes = readSync(input, buffer, 0, Math.min(buffer.length, sizeBytes - done), offset + done);
      if (bytes === 0) return true;
      if (!buffer.subarray(0, bytes).equals(zero.subarray(0, bytes))) return false;
      done += bytes;
    }
    return true;
  } finally {
    closeSync(input);
  }
}
