import test from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createLz4Decoder, createLz4Encoder, LZ4_ENCODER_ARGS } from '../../../src/lib/image/lz4.ts';
import { XxHash32, xxhash32 } from '../../../src/lib/image/xxhash32.ts';
import { BrlError } from '../../../src/lib/core/errors.ts';

const run = promisify(execFile);

/** ~3 MiB mixing compressible text, long zero runs, short repeats and incompressible bytes. */
function sampleData(): Buffer {
  const text = Buffer.from('Bottlerocket is a Linux-based operating system purpose-built to run containers. '.repeat(12000));
  return Buffer.concat([text, Buffer.alloc(600_000), randomBytes(700_000), Buffer.from('abcabcabd'.repeat(50_000)), randomBytes(3)]);
}

function lz4Cli(args: string[], input: Buffer): Buffer {
  const result = spawnSync('lz4', args, { input, maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`lz4 ${args.join(' ')} failed: ${result.stderr.toString()}`);
  return result.stdout;
}

/** Feeds `input` in small odd-sized pieces so frame and block headers straddle chunk boundaries. */
async function decode(input: Buffer, pieceSize = 997): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let at = 0; at < input.length; at += pieceSize) pieces.push(input.subarray(at, at + pieceSize));
  const out: Buffer[] = [];
  await pipeline(Readable.from(pieces), createLz4Decoder(), new Writable({ write(chunk: Buffer, _encoding, callback) { out.push(chunk); callback(); } }));
  return Buffer.concat(out);
}

async function encode(input: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from([input.subarray(0, 12345), input.subarray(12345)]), createLz4Encoder(),
    new Writable({ write(chunk: Buffer, _encoding, callback) { out.push(chunk); callback(); } }));
  return Buffer.concat(out);
}

test('xxHash32 matches the reference vectors, in one piece or streamed', (t) => {
  t.is(xxhash32(Buffer.alloc(0)), 0x02cc5d05);
  t.is(xxhash32(Buffer.from('abc')), 0x32d153ff);
  const data = randomBytes(1000);
  const streamed = new XxHash32();
  for (let at = 0; at < data.length; at += 7) streamed.update(data.subarray(at, at + 7));
  t.is(streamed.digest(), xxhash32(data));
  // The unaligned (byte-wise) and aligned (word-wise) paths agree.
  const shifted = Buffer.alloc(1001);
  data.copy(shifted, 1);
  t.is(xxhash32(shifted.subarray(1)), xxhash32(data));
  t.is(xxhash32(Buffer.from('abc')), spawnSyncXxh('abc'));
});

/** Cross-check against the content checksum the lz4 CLI writes (last 4 bytes of a one-frame file). */
function spawnSyncXxh(text: string): number {
  return lz4Cli(['-q', '-c'], Buffer.from(text)).subarray(-4).readUInt32LE(0);
}

const cliVariants: [string, string[]][] = [
  ['lz4 -9 (4 MiB independent blocks, content checksum)', ['-9']],
  ['linked blocks (-BD) of 64 KiB', ['-1', '-BD', '-B4']],
  ['block checksums (-BX) and no content checksum', ['-BX', '--no-frame-crc', '-B5']],
  ['a content size in the header', ['--content-size', '-B6']],
];

for (const [title, args] of cliVariants) {
  test(`decodes what the lz4 CLI writes: ${title}`, async (t) => {
    const data = sampleData();
    const dir = mkdtempSync(join(tmpdir(), 'brl-lz4-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'in'), data);
    // --content-size needs a file input, not stdin.
    await run('lz4', ['-q', '-f', ...args, join(dir, 'in'), join(dir, 'in.lz4')]);
    const decoded = await decode(readFileSync(join(dir, 'in.lz4')));
    t.true(decoded.equals(data));
  });
}

test('decodes concatenated frames and skips skippable frames', async (t) => {
  const first = Buffer.from('first frame ');
  const second = sampleData().subarray(0, 100_000);
  const skippable = Buffer.alloc(8 + 5);
  skippable.writeUInt32LE(0x184d2a53, 0);
  skippable.writeUInt32LE(5, 4);
  const stream = Buffer.concat([lz4Cli(['-q', '-c'], first), skippable, lz4Cli(['-q', '-c', '-9'], second)]);
  t.true((await decode(stream, 13)).equals(Buffer.concat([first, second])));
});

test('an empty input frame decodes to nothing', async (t) => {
  t.is((await decode(lz4Cli(['-q', '-c'], Buffer.alloc(0)))).length, 0);
});

test('the encoder writes frames that lz4 -t accepts and lz4 -d restores, deterministically', async (t) => {
  const data = sampleData();
  const encoded = await encode(data);
  t.is(encoded.readUInt32LE(0), 0x184d2204);
  t.notThrows(() => lz4Cli(['-t', '-q'], encoded));
  t.true(lz4Cli(['-d', '-q', '-c'], encoded).equals(data));
  const again = await encode(data);
  t.is(createHash('sha256').update(again).digest('hex'), createHash('sha256').update(encoded).digest('hex'));
  t.true((await decode(encoded)).equals(data));
});

test('with a content size the encoder writes what lz4 --content-size writes for a file, and lz4 -d checks it', async (t) => {
  const data = sampleData();
  const dir = mkdtempSync(join(tmpdir(), 'brl-lz4-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'in'), data);
  await run('lz4', [...LZ4_ENCODER_ARGS.filter((arg) => arg !== '-c'), '-f', join(dir, 'in'), join(dir, 'in.lz4')]);
  const fromFile = readFileSync(join(dir, 'in.lz4'));
  t.is(fromFile[4]! & 0x08, 0x08, 'lz4 records the size of a file input');
  t.is(fromFile.readBigUInt64LE(6), BigInt(data.length));
  const out: Buffer[] = [];
  await pipeline(Readable.from([data.subarray(0, 3), data.subarray(3)]), createLz4Encoder({ contentSize: data.length }),
    new Writable({ write(chunk: Buffer, _encoding, callback) { out.push(chunk); callback(); } }));
  t.true(Buffer.concat(out).equals(fromFile));
  t.true(lz4Cli(['-d', '-q', '-c'], fromFile).equals(data));
  // Without a size (a pipe) the frame has none, as before.
  t.is((await encode(data))[4]! & 0x08, 0);
});

test('an encoder promised a content size refuses a different amount of input', async (t) => {
  const sink = new Writable({ write(_chunk, _encoding, callback) { callback(); } });
  await t.throwsAsync(pipeline(Readable.from([Buffer.alloc(1000)]), createLz4Encoder({ contentSize: 1001 }), sink), { message: /promised 1001 bytes but got 1000/ });
});

test('a flipped byte in the content fails the content checksum', async (t) => {
  // Fixed bytes (not random): which decoder check fires depends on the byte the flip hits.
  let state = 12345;
  const hex = Buffer.from(Buffer.alloc(3000).map(() => (state = (state * 1_103_515_245 + 12_345) >>> 0) >>> 24)).toString('hex');
  const data = Buffer.from('x'.repeat(5000) + hex);
  const encoded = lz4Cli(['-q', '-c', '-9'], data);
  // Flip a literal byte near the end of the block (inside the hex text, still a valid LZ4 sequence).
  encoded[encoded.length - 30]! ^= 0x01;
  const error = await t.throwsAsync(decode(encoded), { instanceOf: BrlError });
  t.regex(error!.message, /LZ4 stream is corrupt: (content checksum mismatch|match offset|literal run|block ends)/);
});

test('a truncated stream is an error, not a short output', async (t) => {
  const encoded = lz4Cli(['-q', '-c'], sampleData());
  await t.throwsAsync(decode(encoded.subarray(0, encoded.length - 100)), { instanceOf: BrlError, message: /ends in the middle of a frame/ });
});

test('input that is not LZ4 is refused with the magic it found', async (t) => {
  await t.throwsAsync(decode(Buffer.from('this is plain text, not lz4')), { instanceOf: BrlError, message: /bad frame magic 0x73696874/ });
});

test('many sizes and block sizes round-trip through lz4 -9 and the decoder', async (t) => {
  const base = sampleData();
  for (const [size, blockArg] of [[0, '-B4'], [1, '-B4'], [15, '-B4'], [4097, '-B4'], [65_536, '-B4'], [65_537, '-B4'], [300_001, '-B5'], [1_100_000, '-B6']] as const) {
    const data = Buffer.concat([base.subarray(size % 7919, (size % 7919) + size), Buffer.alloc(Math.max(0, size - base.length))]).subarray(0, size);
    for (const args of [['-9', blockArg], ['-1', '-BD', blockArg]]) {
      t.true((await decode(lz4Cli(['-q', '-c', ...args], data), 4093)).equals(data), `${size} bytes with ${args.join(' ')}`);
    }
  }
});

test('random damage without checksums ends in a BrlError or some output, never another exception', async (t) => {
  const data = sampleData().subarray(0, 400_000);
  // Without checksums damage can only be caught by the block structure, the hardest case.
  const clean = lz4Cli(['-q', '-c', '-9', '-B4', '--no-frame-crc'], data);
  let seed = 12345;
  const random = (limit: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % limit;
  };
  let refused = 0;
  for (let round = 0; round < 200; round++) {
    const damaged = Buffer.from(clean);
    for (let flips = 1 + random(3); flips > 0; flips--) damaged[7 + random(damaged.length - 7)] = random(256);
    try {
      await decode(damaged, 65_536);
    } catch (error) {
      if (!(error instanceof BrlError)) t.fail(`round ${round}: ${String(error)}`);
      refused += 1;
    }
  }
  // The block structure alone catches much of the damage (fixed seed, so the count is stable).
  t.true(refused > 50, `${refused} of 200 damaged streams refused`);
});

test('a compressed chunk of zeros is decoded block by block as the reader consumes, not all at once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-lz4-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sparse = join(dir, 'zeros.img');
  await run('truncate', ['-s', '256M', sparse]);
  await run('lz4', ['-9', '-q', '-f', sparse, `${sparse}.lz4`]);
  const compressed = readFileSync(`${sparse}.lz4`);
  t.true(compressed.length < 4 * 1024 * 1024, 'the whole stream arrives as one chunk');
  const decoder = createLz4Decoder();
  let mostBuffered = 0;
  let total = 0;
  await pipeline(Readable.from([compressed]), decoder, new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _encoding, callback) {
      total += chunk.length;
      mostBuffered = Math.max(mostBuffered, decoder.readableLength);
      setImmediate(callback);
    },
  }));
  t.is(total, 256 * 1024 * 1024);
  // 64 blocks of 4 MiB came from one input chunk; at most a block or two ever waited for the reader.
  t.true(mostBuffered <= 2, `${mostBuffered} decoded blocks were waiting at once`);
});
