// LZ4 block decoding in WebAssembly (~3× the TypeScript decoder), assembled at load time from the WAT below.
import { decodeBlock } from './lz4.ts';

/**
 * `decode(ip, srcEnd, window, op, dstEnd) → end | error` over linear memory: decodes the block in
 * [ip, srcEnd) to op, matches reaching back no further than `window`, never writing at or past
 * `dstEnd`. Returns the end of the output, or a negative number when the block is corrupt (the
 * TypeScript decoder then names the problem). The checks are the TypeScript decoder's, in the same
 * order, so both accept exactly the same blocks.
 */
const DECODE_WAT = `
loop $sequence
  local.get $ip  local.get $srcEnd  i32.ge_u
  if  i32.const -1  return  end
  local.get $ip  i32.load8_u  local.set $token
  local.get $ip  i32.const 1  i32.add  local.set $ip

  ;; literal length: 4 bits, then bytes while they are 255
  local.get $token  i32.const 4  i32.shr_u  local.tee $len
  i32.const 15  i32.eq
  if
    loop $more
      local.get $ip  local.get $srcEnd  i32.ge_u
      if  i32.const -2  return  end
      local.get $ip  i32.load8_u  local.set $byte
      local.get $ip  i32.const 1  i32.add  local.set $ip
      local.get $len  local.get $byte  i32.add  local.set $len
      local.get $byte  i32.const 255  i32.eq
      br_if $more
    end
  end
  local.get $len  local.get $srcEnd  local.get $ip  i32.sub  i32.gt_u
  local.get $len  local.get $dstEnd  local.get $op  i32.sub  i32.gt_u
  i32.or
  if  i32.const -3  return  end

  ;; short runs move 16 bytes when 16 remain on both sides (the next sequence overwrites the excess)
  local.get $len  i32.const 16  i32.le_u
  local.get $ip  i32.const 16  i32.add  local.get $srcEnd  i32.le_u  i32.and
  local.get $op  i32.const 16  i32.add  local.get $dstEnd  i32.le_u  i32.and
  if
    local.get $op  local.get $ip  i64.load  i64.store
    local.get $op  local.get $ip  i64.load offset=8  i64.store offset=8
  else
    local.get $op  local.get $ip  local.get $len  memory.copy
  end
  local.get $ip  local.get $len  i32.add  local.set $ip
  local.get $op  local.get $len  i32.add  local.set $op
  local.get $ip  local.get $srcEnd  i32.eq
  if  local.get $op  return  end

  ;; match: 2-byte offset, length 4 bits + 4, then bytes while they are 255
  local.get $ip  i32.const 2  i32.add  local.get $srcEnd  i32.gt_u
  if  i32.const -4  return  end
  local.get $ip  i32.load16_u  local.set $offset
  local.get $ip  i32.const 2  i32.add  local.set $ip
  local.get $token  i32.const 15  i32.and  local.tee $len
  i32.const 15  i32.eq
  if
    loop $more
      local.get $ip  local.get $srcEnd  i32.ge_u
      if  i32.const -5  return  end
      local.get $ip  i32.load8_u  local.set $byte
      local.get $ip  i32.const 1  i32.add  local.set $ip
      local.get $len  local.get $byte  i32.add  local.set $len
      local.get $byte  i32.const 255  i32.eq
      br_if $more
    end
  end
  local.get $len  i32.const 4  i32.add  local.set $len
  local.get $offset  i32.eqz
  local.get $offset  local.get $op  local.get $window  i32.sub  i32.gt_u
  i32.or
  if  i32.const -6  return  end
  local.get $len  local.get $dstEnd  local.get $op  i32.sub  i32.gt_u
  if  i32.const -7  return  end
  local.get $op  local.get $offset  i32.sub  local.set $from
  local.get $op  local.get $len  i32.add  local.set $end

  local.get $offset  i32.const 8  i32.ge_u
  local.get $end  i32.const 8  i32.add  local.get $dstEnd  i32.le_u
  i32.and
  if
    ;; 8 bytes a step: with offset >= 8 each read lies wholly before the write position
    loop $words
      local.get $op  local.get $from  i64.load  i64.store
      local.get $op  i32.const 8  i32.add  local.set $op
      local.get $from  i32.const 8  i32.add  local.set $from
      local.get $op  local.get $end  i32.lt_u
      br_if $words
    end
  else
    local.get $len  i32.const 16  i32.ge_u
    if
      ;; an overlapping match repeats the last offset bytes: copy them in doubling, disjoint chunks
      loop $double
        local.get $op  local.get $from  i32.sub  local.tee $chunk
        local.get $end  local.get $op  i32.sub  local.tee $byte
        local.get $chunk  local.get $byte  i32.lt_u
        select
        local.set $chunk
        local.get $op  local.get $from  local.get $chunk  memory.copy
        local.get $op  local.get $chunk  i32.add  local.tee $op
        local.get $end  i32.lt_u
        br_if $double
      end
    else
      loop $bytes
        local.get $op  local.get $from  i32.load8_u  i32.store8
        local.get $op  i32.const 1  i32.add  local.set $op
        local.get $from  i32.const 1  i32.add  local.set $from
        local.get $op  local.get $end  i32.lt_u
        br_if $bytes
      end
    end
  end
  local.get $end  local.set $op
  br $sequence
end
unreachable
`;
const PARAMS = ['$ip', '$srcEnd', '$window', '$op', '$dstEnd'];
const LOCALS = ['$token', '$len', '$byte', '$offset', '$from', '$end', '$chunk'];

/** Opcodes of the instructions the WAT above uses (WebAssembly core spec §5.4). */
const OPCODES: Record<string, number[]> = {
  unreachable: [0x00], return: [0x0f], select: [0x1b], else: [0x05], end: [0x0b],
  'i32.load': [0x28], 'i64.load': [0x29], 'i32.load8_u': [0x2d], 'i32.load16_u': [0x2f],
  'i32.store': [0x36], 'i64.store': [0x37], 'i32.store8': [0x3a],
  'i32.eqz': [0x45], 'i32.eq': [0x46], 'i32.ne': [0x47], 'i32.lt_u': [0x49], 'i32.gt_u': [0x4b], 'i32.le_u': [0x4d], 'i32.ge_u': [0x4f],
  'i32.add': [0x6a], 'i32.sub': [0x6b], 'i32.and': [0x71], 'i32.or': [0x72], 'i32.shr_u': [0x76],
  'memory.copy': [0xfc, 0x0a, 0x00, 0x00],
};
const BLOCKS: Record<string, number> = { block: 0x02, loop: 0x03, if: 0x04 };
const LOCAL_OPS: Record<string, number> = { 'local.get': 0x20, 'local.set': 0x21, 'local.tee': 0x22 };
/** Natural alignment (log2) of each memory access, the memarg's alignment hint. */
const ALIGN: Record<string, number> = { 'i32.load': 2, 'i64.load': 3, 'i32.load8_u': 0, 'i32.load16_u': 1, 'i32.store': 2, 'i64.store': 3, 'i32.store8': 0 };

function uleb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

function sleb(value: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    if ((value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0)) return [...out, byte];
    out.push(byte | 0x80);
  }
}

/** Assembles the flat-form WAT subset above into a function body (labels and names resolved). */
export function assembleBody(wat: string, names: string[]): number[] {
  const tokens = wat.replace(/;;[^\n]*/g, '').split(/\s+/).filter(Boolean);
  const code: number[] = [];
  const labels: (string | undefined)[] = [];
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index]!;
    const operand = (): string => {
      const next = tokens[++index];
      if (next === undefined) throw new Error(`WAT: ${token} needs an operand`);
      return next;
    };
    if (token in BLOCKS) {
      const label = tokens[index + 1]?.startsWith('$') ? operand() : undefined;
      labels.push(label);
      code.push(BLOCKS[token]!, 0x40);
    } else if (token === 'end' || token === 'else') {
      if (token === 'end') {
        if (labels.length === 0) throw new Error('WAT: end without a block');
        labels.pop();
      }
      code.push(...OPCODES[token]!);
    } else if (token === 'br' || token === 'br_if') {
      const label = operand();
      const depth = labels.length - 1 - labels.lastIndexOf(label);
      if (depth >= labels.length) throw new Error(`WAT: unknown label ${label}`);
      code.push(token === 'br' ? 0x0c : 0x0d, ...uleb(depth));
    } else if (token in LOCAL_OPS) {
      const name = operand();
      const slot = names.indexOf(name);
      if (slot < 0) throw new Error(`WAT: unknown local ${name}`);
      code.push(LOCAL_OPS[token]!, ...uleb(slot));
    } else if (token === 'i32.const') {
      code.push(0x41, ...sleb(Number(operand())));
    } else if (token in ALIGN) {
      const offset = tokens[index + 1]?.startsWith('offset=') ? Number(operand().slice(7)) : 0;
      code.push(...OPCODES[token]!, ALIGN[token]!, ...uleb(offset));
    } else if (token in OPCODES) {
      code.push(...OPCODES[token]!);
    } else {
      throw new Error(`WAT: unknown instruction ${token}`);
    }
  }
  if (labels.length > 0) throw new Error('WAT: unclosed block');
  return [...code, 0x0b];
}

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

function name(text: string): number[] {
  return [...uleb(text.length), ...Buffer.from(text, 'latin1')];
}

/** The module: imports `env.memory` (min `pages`, `shared` → max `pages` and shared), exports `decode`. */
export function lz4WasmModuleBytes(pages: number, shared: boolean): Uint8Array<ArrayBuffer> {
  const i32 = 0x7f;
  const body = assembleBody(DECODE_WAT, [...PARAMS, ...LOCALS]);
  const limits = shared ? [0x03, ...uleb(pages), ...uleb(pages)] : [0x00, ...uleb(pages)];
  const functionCode = [...uleb(1), ...uleb(LOCALS.length), i32, ...body];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, ...uleb(PARAMS.length), ...PARAMS.map(() => i32), 1, i32]),
    ...section(2, [1, ...name('env'), ...name('memory'), 0x02, ...limits]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...name('decode'), 0x00, 0]),
    ...section(10, [1, ...uleb(functionCode.length), ...functionCode]),
  ]);
}

type DecodeExport = (ip: number, srcEnd: number, window: number, op: number, dstEnd: number) => number;

const PAGE = 65536;

/**
 * Memory shared by the threads that decode blocks: one SharedArrayBuffer holding every input and
 * output block, and (when the runtime has WebAssembly) the linear memory it belongs to with the
 * compiled decoder. Posted to worker threads as is; nothing is copied between threads.
 */
export interface BlockArena {
  buffer: SharedArrayBuffer;
  wasm?: { memory: WebAssembly.Memory; module: WebAssembly.Module };
}

/** An arena of at least `bytes` bytes; plain shared memory where WebAssembly is disabled (`--jitless`). */
export function createBlockArena(bytes: number): BlockArena {
  const pages = Math.ceil(bytes / PAGE);
  if (typeof WebAssembly !== 'object') return { buffer: new SharedArrayBuffer(pages * PAGE) };
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const module = new WebAssembly.Module(lz4WasmModuleBytes(pages, true));
  return { buffer: memory.buffer as unknown as SharedArrayBuffer, wasm: { memory, module } };
}

/** One thread's decoder of independent blocks held in an arena. */
export class ArenaDecoder {
  readonly #bytes: Uint8Array;
  readonly #decode: DecodeExport | undefined;

  constructor(arena: BlockArena) {
    this.#bytes = new Uint8Array(arena.buffer);
    if (arena.wasm) {
      const instance = new WebAssembly.Instance(arena.wasm.module, { env: { memory: arena.wasm.memory } });
      this.#decode = instance.exports.decode as DecodeExport;
    }
  }

  /**
   * Decodes the block at `[input, input + length)` to `[output, output + capacity)` as
   * `decodeBlock` would, and returns the decoded length. A block WebAssembly refuses is decoded
   * again by `decodeBlock`, which throws the error that names the problem.
   */
  decode(input: number, length: number, output: number, capacity: number): number {
    if (this.#decode) {
      const end = this.#decode(input, input + length, output, output, output + capacity);
      if (end >= 0) return end - output;
    }
    return decodeBlock(this.#bytes.subarray(input, input + length), this.#bytes.subarray(output, output + capacity), 0, 0);
  }
}
