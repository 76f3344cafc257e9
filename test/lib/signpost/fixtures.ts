// Small A/B disk images with Bottlerocket's partition types, for signpost and updog tests.
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { createGptTable, writeGpt, writeProtectiveMbr, type GptTable, type NewPartition } from '../../../src/lib/image/gpt.ts';
import { FRESH_BOOT_A_ATTRIBUTES } from '../../../src/lib/image/gptprio.ts';
import { PARTITION_TYPE } from '../../../src/lib/image/layout.ts';
import { sgdiskReport } from '../../helpers/oracles.ts';

const MIB = 2048n;

/** Temp dirs of this test process, removed when it exits. */
const scratch: string[] = [];
process.on('exit', () => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

export async function scratchDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

export interface FixtureSizes {
  bootMiB: number;
  rootMiB: number;
  hashMiB: number;
  /** false = single bank. */
  twoSets?: boolean;
  /** A differently sized ROOT-B (a layout updog must refuse). */
  rootBMiB?: number;
}

/** Writes a fresh A/B disk (A: p1 t0 s1, B: all clear) to `path` and returns its table. */
export async function makeAbDisk(path: string, sizes: FixtureSizes = { bootMiB: 1, rootMiB: 4, hashMiB: 1 }): Promise<GptTable> {
  const banks = sizes.twoSets === false ? ['A'] : ['A', 'B'];
  const partitions: NewPartition[] = [];
  let start = 1n;
  const add = (name: string, typeGuid: string, sizeMiB: number, attributes = 0n): void => {
    partitions.push({ typeGuid, uniqueGuid: randomUUID(), firstLba: start * MIB, lastLba: (start + BigInt(sizeMiB)) * MIB - 1n, attributes, name });
    start += BigInt(sizeMiB);
  };
  for (const bank of banks) {
    add(`BOTTLEROCKET-BOOT-${bank}`, PARTITION_TYPE.boot, sizes.bootMiB, bank === 'A' ? FRESH_BOOT_A_ATTRIBUTES : 0n);
    add(`BOTTLEROCKET-ROOT-${bank}`, PARTITION_TYPE.root, bank === 'B' ? sizes.rootBMiB ?? sizes.rootMiB : sizes.rootMiB);
    add(`BOTTLEROCKET-HASH-${bank}`, PARTITION_TYPE.hash, sizes.hashMiB);
  }
  add('BOTTLEROCKET-PRIVATE', PARTITION_TYPE.private, 1);
  const totalSectors = (start + 1n) * MIB;
  await writeFile(path, '');
  await truncate(path, Number(totalSectors) * 512);
  const table = createGptTable({ diskGuid: randomUUID(), totalSectors, partitions });
  await writeProtectiveMbr(path, table);
  await writeGpt(path, table);
  return table;
}

/** `sgdisk -v` output; throws unless it says "No problems found" (sgdisk exits 0 either way). */
export function sgdiskVerify(path: string): string {
  const report = sgdiskReport(path);
  if (!/No problems found/.test(report)) throw new Error(`sgdisk -v ${path} reports problems:\n${report}`);
  return report;
}

/** The attribute bits sgdisk reports as set on partition `number` (e.g. [48, 56]). */
export function sgdiskAttributeBits(path: string, number: number): number[] {
  const out = execFileSync('sgdisk', [`-A`, `${number}:show`, path], { encoding: 'utf8' });
  return [...out.matchAll(/^\s*\d+:(\d+):/gm)].map((match) => Number(match[1])).sort((a, b) => a - b);
}
