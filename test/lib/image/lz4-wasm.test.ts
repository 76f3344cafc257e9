import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { decodeBlock } from '../../../src/lib/image/lz4.ts';
import { ArenaDecoder, createBlockArena, lz4WasmModuleBytes } from '../../../src/lib/image/lz4-wasm.ts';
import { BrlError } from '../../../src/lib/core/errors.ts';

/** Text, zeros, random bytes, repeats of every short period (offsets 1–9) and tiny tails. */
function sampleData(): Buffer {
  const parts = [Buffer.from('Bottlerocket is a Linux-based operating system purpose-built to run containers. '.repeat(9000)), Buffer.alloc(300_000), randomBytes(200_000)];
  for (let period = 1; period <= 9; period++) {
    parts.push(Buffer.from('abcdefghi'.slice(0, period).repeat(Math.ceil(20_000 / period))), randomBytes(period * 3));
  }
  parts.push(Buffer.from('abcabcabd'.repeat(30_000)), randomBytes(5));
  return Buffer.concat(parts);
}

function lz4(args: string[], input: Buffer): Buffer {
  const result = spawnSync('lz4', ['-q', '-c', ...args], { input, maxBuffer: 1 << 28 });
  if (result.status !== 0) throw new Error(`lz4 ${args.join(' ')} failed: ${result.stderr.toString()}`);
  return result.stdout;
}

/** The blocks of a one-frame LZ4 file with independent blocks. */
function blocksOf(frame: Buffer): { data: Buffer; uncompressed: boolean }[] {
  const flags = frame[4]!;
  let at = 7 + (flags & 0x08 ? 8 : 0);
  const blocks: { data: Buffer; uncompressed: boolean }[] = [];
  for (;;) {
    const word = frame.readUInt32LE(at);
    at += 4;
    if (word === 0) return blocks;
    const size = word & 0x7fffffff;
    blocks.push({ data: frame.subarray(at, at + size), uncompressed: (word & 0x80000000) !== 0 });
    at += size + (flags & 0x10 ? 4 : 0);
  }
}

/** The WebAssembly function itself (no TypeScript fallback): the decoded bytes, or undefined if it refused. */
function rawWasm(capacity: number): (block: Uint8Array, outputSize?: number) => Buffer | undefined {
  const pages = Math.ceil((2 * capacity) / 65536);
  const memory = new WebAssembly.Memory({ initial: pages });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(lz4WasmModuleBytes(pages, false)), { env: { memory } });
  const decode = instance.exports.decode as (ip: number, srcEnd: number, window: number, op: number, dstEnd: number) => number;
  return (block, outputSize = capacity) => {
    const bytes = new Uint8Array(memory.buffer);
    bytes.set(block, 0);
    const end = decode(0, block.length, capacity, capacity, capacity + outputSize);
    return end < 0 ? undefined : Buffer.from(bytes.slice(capacity, end));
  };
}

/** decodeBlock's verdict: the decoded bytes, or the error it threw. */
function typescript(block: Uint8Array, outputSize: number): Buffer | Error {
  const out = Buffer.alloc(outputSize);
  try {
    return Buffer.from(out.subarray(0, decodeBlock(block, out, 0, 0)));
  } catch (error) {
    return error as Error;
  }
}

const data = sampleData();

for (const args of [['-1', '-B4'], ['--fast=9', '-B5'], ['-9', '-B6', '--no-frame-crc'], ['-12', '-B7', '-BX']]) {
  test(`the WebAssembly decoder restores what lz4 -d restores (lz4 ${args.join(' ')})`, (t) => {
    const frame = lz4(args, data);
    const expected = execFileSync('lz4', ['-d', '-c'], { input: frame, maxBuffer: 1 << 28 });
    const capacity = 4 << 20;
    const wasm = rawWasm(capacity);
    const arena = createBlockArena(2 * capacity);
    const arenaBytes = new Uint8Array(arena.buffer);
    const decoder = new ArenaDecoder(arena);
    const viaWasm: Buffer[] = [];
    const viaArena: Buffer[] = [];
    for (const block of blocksOf(frame)) {
      if (block.uncompressed) {
        viaWasm.push(block.data);
        viaArena.push(block.data);
        continue;
      }
      const decoded = wasm(block.data);
      if (!decoded) return t.fail('the WebAssembly decoder refused a block lz4 wrote');
      viaWasm.push(decoded);
      arenaBytes.set(block.data, 0);
      viaArena.push(Buffer.from(arenaBytes.slice(capacity, capacity + decoder.decode(0, block.data.length, capacity, capacity))));
    }
    t.true(Buffer.concat(viaWasm).equals(expected));
    t.true(Buffer.concat(viaArena).equals(expected));
  });
}

test('tiny inputs (0–64 bytes, every end-of-block case) decode like lz4 -d', (t) => {
  const wasm = rawWasm(65536);
  for (let size = 0; size <= 64; size++) {
    const input = Buffer.from('aaaaaaaabcbcbcbc0123456789'.repeat(3).slice(0, size));
    const frame = lz4(['-B4'], input);
    const decoded = blocksOf(frame).map((block) => (block.uncompressed ? block.data : wasm(block.data)!));
    t.true(Buffer.concat(decoded).equals(execFileSync('lz4', ['-d', '-c'], { input: frame })), `size ${size}`);
  }
});

test('damaged blocks: WebAssembly refuses exactly what the TypeScript decoder refuses, and otherwise writes the same bytes', (t) => {
  const blocks = blocksOf(lz4(['-9', '-B4'], data)).filter((block) => !block.uncompressed).map((block) => block.data);
  const wasm = rawWasm(65536);
  let seed = 12345;
  const random = (below: number): number => {
    seed = (seed * 1_103_515_245 + 12_345) >>> 0;
    return (seed >>> 8) % below;
  };
  let refused = 0;
  for (let round = 0; round < 3000; round++) {
    const block = Buffer.from(blocks[random(blocks.length)]!);
    const damage = random(4);
    let damaged: Buffer = block;
    if (damage === 0) {
      for (let flips = 1 + random(4); flips > 0; flips--) {
        const index = random(block.length);
        block[index] = block[index]! ^ (1 << random(8));
      }
    } else if (damage === 1) damaged = block.subarray(0, random(block.length));
    else if (damage === 2) damaged = randomBytes(1 + random(300));
    // A too-small output area must be refused the same way as well.
    const outputSize = damage === 3 ? random(65536) : 65536;
    const expected = typescript(damaged, outputSize);
    const actual = wasm(damaged, outputSize);
    if (expected instanceof Error) {
      refused += 1;
      t.is(actual, undefined, `round ${round}: TypeScript threw "${expected.message}" but WebAssembly decoded`);
    } else if (!actual || !actual.equals(expected)) {
      return t.fail(`round ${round}: TypeScript decoded ${expected.length} bytes, WebAssembly ${actual ? 'other bytes' : 'refused'}`);
    }
  }
  t.true(refused > 500, `only ${refused} damaged blocks were refused`);
});

test('a corrupt block in the arena fails with the TypeScript decoder\'s message', (t) => {
  const arena = createBlockArena(2 * 65536);
  const bytes = new Uint8Array(arena.buffer);
  // One sequence: no literals, then a match 16 bytes back in an empty output.
  const block = Buffer.from([0x00, 0x10, 0x00, 0x00]);
  bytes.set(block, 0);
  const error = t.throws(() => new ArenaDecoder(arena).decode(0, block.length, 65536, 65536), { instanceOf: BrlError });
  t.is(error!.message, (typescript(block, 65536) as Error).message);
  t.regex(error!.message, /match offset 16 points before the window/);
});

test('without WebAssembly (node --jitless has none) the arena decodes in TypeScript', (t) => {
  const input = data.subarray(0, 500_000);
  const block = blocksOf(lz4(['-B7'], input))[0]!.data;
  // Node's own TypeScript loader needs WebAssembly, so --jitless cannot load this module: hide the global instead.
  const saved = globalThis.WebAssembly;
  Reflect.deleteProperty(globalThis, 'WebAssembly');
  try {
    const arena = createBlockArena(8 << 20);
    t.is(arena.wasm, undefined);
    new Uint8Array(arena.buffer).set(block, 0);
    const length = new ArenaDecoder(arena).decode(0, block.length, 4 << 20, 4 << 20);
    t.true(Buffer.from(arena.buffer, 4 << 20, length).equals(input));
  } finally {
    globalThis.WebAssembly = saved;
  }
});
