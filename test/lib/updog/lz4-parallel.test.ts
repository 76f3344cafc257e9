import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeLz4Parallel } from '../../../src/lib/updog/lz4-parallel.ts';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { scratchDir } from '../signpost/fixtures.ts';

/** 9 MiB that compresses like an OS image: runs of random bytes, text and zeros. */
function content(): Buffer {
  const parts: Buffer[] = [];
  let state = 7;
  for (let index = 0; index < 36; index++) {
    const piece = Buffer.alloc(256 * 1024);
    if (index % 3 === 0) for (let at = 0; at < piece.length; at++) piece[at] = (state = (state * 1_103_515_245 + 12_345) >>> 0) >>> 24;
    else if (index % 3 === 1) piece.write('the quick brown fox jumps over the lazy dog; '.repeat(6000));
    parts.push(piece);
  }
  return Buffer.concat(parts);
}

const data = content();
let dir: string;
test.before(async () => {
  dir = await scratchDir('brl-lz4p-');
  await writeFile(join(dir, 'data'), data);
});

function lz4(args: string[]): Buffer {
  return execFileSync('lz4', ['-q', '-c', ...args, join(dir, 'data')], { maxBuffer: 1 << 28 });
}

/** Feeds `compressed` in uneven chunks (1 byte to 100 KiB), like a network would. */
async function* chunks(compressed: Buffer): AsyncGenerator<Buffer> {
  let at = 0;
  let size = 1;
  while (at < compressed.length) {
    yield compressed.subarray(at, at + size);
    at += size;
    size = (size * 7 + 13) % 100_000 + 1;
  }
}

async function decode(compressed: Buffer, decoders?: number): Promise<Buffer> {
  const hash = createHash('sha256');
  let length = 0;
  // Copy nothing: each buffer is only valid until the next is requested, so hash it right away.
  for await (const block of decodeLz4Parallel(chunks(compressed), decoders === undefined ? {} : { decoders })) {
    hash.update(block);
    length += block.length;
  }
  return Buffer.from(`${length}:${hash.digest('hex')}`);
}

const expected = Buffer.from(`${data.length}:${createHash('sha256').update(data).digest('hex')}`);

for (const [name, args] of [
  ['lz4 -9 defaults (4 MiB independent blocks)', ['-9']],
  ['64 KiB blocks with block checksums', ['-1', '-B4', '-BX']],
  ['a declared content size', ['-9', '--content-size']],
  ['linked blocks (sequential fallback)', ['-1', '-BD']],
  ['no content checksum', ['-1', '--no-frame-crc']],
] as const) {
  test(`decodes ${name} exactly like lz4 -d`, async (t) => {
    t.deepEqual(await decode(lz4([...args])), expected);
    t.deepEqual(await decode(lz4([...args]), 3), expected);
  });
}

test('decodes concatenated frames with a skippable frame between them on the main thread alone', async (t) => {
  const skippable = Buffer.alloc(8 + 5);
  skippable.writeUInt32LE(0x184d2a53, 0);
  skippable.writeUInt32LE(5, 4);
  const one = lz4(['-1', '-B5']);
  const twice = await decode(Buffer.concat([one, skippable, one]), 1);
  t.is(twice.toString().split(':')[0], String(data.length * 2));
});

test('a corrupted block, a truncated stream and a wrong content size are refused', async (t) => {
  const good = lz4(['-1', '-B4', '-BX']);
  const flipped = Buffer.from(good);
  flipped[good.length >> 1] = flipped[good.length >> 1]! ^ 0x55;
  await t.throwsAsync(decode(flipped), { instanceOf: BrlError, message: /LZ4 stream is corrupt/ });
  await t.throwsAsync(decode(good.subarray(0, good.length - 1000)), { message: /stream ends inside a block/ });
  const sized = lz4(['-1', '--content-size']);
  const wrongSize = Buffer.from(sized);
  wrongSize.writeBigUInt64LE(BigInt(data.length + 1), 6);
  // The header checksum covers the size field, so fix it up the way a bad encoder would.
  const { xxhash32 } = await import('../../../src/lib/image/xxhash32.ts');
  wrongSize[14] = (xxhash32(wrongSize.subarray(4, 14)) >>> 8) & 0xff;
  await t.throwsAsync(decode(wrongSize), { message: /declares \d+ bytes of content but decodes to \d+/ });
  await t.throwsAsync(decode(Buffer.from('not lz4 at all')), { message: /bad frame magic/ });
});

test('a yielded block stays intact while the consumer is busy and later blocks are already being decoded', async (t) => {
  const compressed = lz4(['-1', '-B4']);
  const hash = createHash('sha256');
  let length = 0;
  for await (const block of decodeLz4Parallel(chunks(compressed), { decoders: 2 })) {
    const copy = Buffer.from(block);
    // A slow write: the decoder runs ahead meanwhile (network reads, dispatch, decoding).
    await new Promise((resolve) => setTimeout(resolve, 2));
    t.true(block.equals(copy), `block at ${length} changed while it was lent out`);
    hash.update(block);
    length += block.length;
  }
  t.deepEqual(Buffer.from(`${length}:${hash.digest('hex')}`), expected);
});

test('a consumer that stops early stops the decoder and its worker', async (t) => {
  let taken = 0;
  for await (const block of decodeLz4Parallel(chunks(lz4(['-1', '-B4'])), { decoders: 2 })) {
    taken += block.length;
    if (taken > 1 << 20) break;
  }
  t.true(taken > 1 << 20);
});

// Serial: it must find the spare arena that only the decode under test leaves behind.
test.serial('a block still held by its consumer is not overwritten by a decode that starts meanwhile', async (t) => {
  const first = lz4(['-1', '-B4']);
  const other = Buffer.alloc(data.length, 0xa5);
  const otherCompressed = execFileSync('lz4', ['-q', '-c', '-1', '-B4'], { input: other, maxBuffer: 1 << 28 });
  const iterator = decodeLz4Parallel(chunks(first), { decoders: 2 })[Symbol.asyncIterator]();
  let decoded = 0;
  let last: Buffer | undefined;
  while (decoded < data.length) {
    const next = await iterator.next();
    if (next.done) break;
    last = next.value;
    decoded += next.value.length;
  }
  t.is(decoded, data.length);
  const expected = Buffer.from(data.subarray(data.length - last!.length));
  // The first decoder has read its whole input by now (it prefetches) while `last` is still held.
  await new Promise((resolve) => setTimeout(resolve, 200));
  let otherBytes = 0;
  for await (const block of decodeLz4Parallel(chunks(otherCompressed), { decoders: 2 })) otherBytes += block.length;
  t.is(otherBytes, other.length);
  t.true(last!.equals(expected), 'the held block kept its bytes');
  t.true((await iterator.next()).done);
});

// Concurrent, serial to the other tests of this file only so that its decodes hand arenas to each other.
test.serial('six lanes of decodes in one process, started and finished at different times, each write exactly their own bytes', async (t) => {
  // Many short decodes, so decodes start while others finish and pick up their arenas; every block is
  // held across a timer (a slow disk write) and compared byte for byte after it.
  const lanes = 6;
  const perLane = 10;
  const inputs = Array.from({ length: lanes * perLane }, (_, index) => {
    const plain = Buffer.concat([data.subarray(index * 4096, index * 4096 + 50_000 + index * 777), Buffer.alloc(100_000, index + 1)]);
    return { plain, compressed: execFileSync('lz4', ['-q', '-c', '-1', '-B4'], { input: plain }) };
  });
  const wrong: string[] = [];
  await Promise.all(Array.from({ length: lanes }, async (_, lane) => {
    for (let run = 0; run < perLane; run++) {
      const { plain, compressed } = inputs[lane * perLane + run]!;
      let at = 0;
      for await (const block of decodeLz4Parallel(chunks(compressed), { decoders: 1 + (lane % 2) })) {
        await new Promise((resolve) => setTimeout(resolve, 1 + lane));
        if (!block.equals(plain.subarray(at, at + block.length))) wrong.push(`lane ${lane} run ${run}: block at ${at}`);
        at += block.length;
      }
      if (at !== plain.length) wrong.push(`lane ${lane} run ${run}: ${at} of ${plain.length} bytes`);
    }
  }));
  t.deepEqual(wrong, []);
});

test('a source that fails while the consumer is still writing the previous block fails the consumer, not the process', async (t) => {
  const compressed = lz4(['-1', '-B4']);
  async function* failingSource(): AsyncGenerator<Buffer> {
    yield* chunks(compressed.subarray(0, compressed.length >> 1));
    throw new Error('the signed hash does not match');
  }
  // Node ends a process on a rejection left unhandled past a turn of the event loop; count any here.
  const unhandled: unknown[] = [];
  const record = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', record);
  t.teardown(() => process.off('unhandledRejection', record));
  await t.throwsAsync(async () => {
    for await (const block of decodeLz4Parallel(failingSource(), { decoders: 1 })) {
      t.true(block.length > 0);
      // A write to disk: the prefetched next block fails meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }, { message: 'the signed hash does not match' });
  t.deepEqual(unhandled, []);
});
