import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { openDiskImage } from '../../../src/lib/image/image-source.ts';

const run = promisify(execFile);

function workDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'brl-lz4-reader-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** 3 MiB + 1000 bytes: varied data, a run of zeros and a ragged end, so blocks of 64 KiB cut through all of it. */
function sampleImage(dir: string): { path: string; bytes: Buffer } {
  const bytes = Buffer.alloc(3 * 1024 * 1024 + 1000);
  for (let index = 0; index < bytes.length; index++) if (index < 1_000_000 || index > 2_000_000) bytes[index] = (index * 2654435761) >>> 27;
  bytes.write('the last bytes', bytes.length - 14);
  const path = join(dir, 'disk.img');
  writeFileSync(path, bytes);
  return { path, bytes };
}

async function compress(path: string, flags: string[]): Promise<string> {
  const out = `${path}${flags.join('')}.lz4`;
  await run('lz4', [...flags, '-q', '-f', path, out]);
  return out;
}

const READS: [number, number][] = [[0, 512], [65_536 - 10, 20], [1_500_000, 70_000], [3 * 1024 * 1024 - 100, 2000], [0, 3 * 1024 * 1024 + 1000], [3_000_000, 0]];

test('reads any range of an .lz4 in place: brl\'s indexed blocks, no content size, linked blocks, block checksums, concatenated frames', async (t) => {
  const dir = workDir(t);
  const { path, bytes } = sampleImage(dir);
  const half = join(dir, 'half.img');
  writeFileSync(half, bytes.subarray(0, 2_000_000));
  const rest = join(dir, 'rest.img');
  writeFileSync(rest, bytes.subarray(2_000_000));
  const concatenated = join(dir, 'two-frames.lz4');
  writeFileSync(concatenated, Buffer.concat([readFileSync(await compress(half, ['-BI', '--content-size'])), readFileSync(await compress(rest, []))]));
  const files = [
    await compress(path, ['-9', '-B4', '-BI', '--content-size']),
    await compress(path, ['-B4', '-BI', '--content-size', '-BX']),
    await compress(path, ['-B4']),
    await compress(path, ['-B4', '-BD', '--content-size']),
    concatenated,
  ];
  for (const file of files) {
    const disk = await openDiskImage(file);
    try {
      t.is(disk.format, 'lz4');
      t.is(disk.sizeBytes, bytes.length, file);
      // Out of order on purpose: later reads go back to earlier blocks.
      for (const [position, length] of [...READS, ...READS.toReversed()]) {
        t.true((await disk.read(position, length)).equals(bytes.subarray(position, position + length)), `${file} at ${position}+${length}`);
      }
      t.is((await disk.read(bytes.length - 4, 100)).toString(), 'ytes');
    } finally {
      await disk.close();
    }
  }
});

test('only the blocks asked for are decoded: a damaged block elsewhere goes unnoticed until it is read', async (t) => {
  const dir = workDir(t);
  const { path, bytes } = sampleImage(dir);
  const file = await compress(path, ['-B4', '-BI', '--content-size', '-BX']);
  const compressed = readFileSync(file);
  // The middle of the file lies inside a block of the varied data past the zero run.
  compressed[Math.floor(compressed.length * 0.75)]! ^= 0xff;
  writeFileSync(file, compressed);
  const disk = await openDiskImage(file);
  try {
    t.true((await disk.read(0, 4096)).equals(bytes.subarray(0, 4096)));
    t.true((await disk.read(bytes.length - 512, 512)).equals(bytes.subarray(bytes.length - 512)));
    await t.throwsAsync(disk.read(0, bytes.length), { instanceOf: BrlError, code: 'LZ4_CORRUPT', message: /block checksum mismatch/ });
  } finally {
    await disk.close();
  }
});

test('a truncated .lz4 is an LZ4_CORRUPT error when it is opened', async (t) => {
  const dir = workDir(t);
  const { path } = sampleImage(dir);
  for (const flags of [['-B4', '-BI', '--content-size'], ['-B4', '-BD']]) {
    const file = await compress(path, flags);
    const whole = readFileSync(file);
    writeFileSync(file, whole.subarray(0, whole.length >> 1));
    await t.throwsAsync(openDiskImage(file), { instanceOf: BrlError, code: 'LZ4_CORRUPT' }, flags.join(' '));
  }
});

test('reading an .lz4 in place writes nothing to the temp directory', async (t) => {
  const dir = workDir(t);
  const { path, bytes } = sampleImage(dir);
  const file = await compress(path, ['-9', '-B4', '-BI', '--content-size']);
  const temp = workDir(t);
  const script = `import { openDiskImage } from ${JSON.stringify(new URL('../../../src/lib/image/image-source.ts', import.meta.url).href)};
    const disk = await openDiskImage(${JSON.stringify(file)});
    process.stdout.write((await disk.read(0, ${bytes.length})).subarray(-14));
    await disk.close();`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, TMPDIR: temp } });
  t.is(stdout, 'the last bytes');
  t.deepEqual(readdirSync(temp), []);
});
