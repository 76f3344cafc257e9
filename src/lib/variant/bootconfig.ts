// Kernel bootconfig for PRIVATE: snippets merged as sorted `key = value` lines, framed as `bootconfig -a` does.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';

const MAGIC = Buffer.from('#BOOTCONFIG\n', 'latin1');
const ALIGN = 4;
/** The kernel refuses bootconfig data larger than this. */
const MAX_SIZE = 32768;
const line = /^[A-Za-z0-9_.-]+\s*=\s*\S.*$/;

/** Reads every snippet in `dir` (missing dir = none) into the sorted text upstream feeds `bootconfig -a`. */
export async function collectBootconfig(dir: string): Promise<string> {
  const names = (await readdir(dir).catch(() => [] as string[])).sort();
  const lines: string[] = [];
  for (const name of names) {
    const text = await readFile(join(dir, name), 'utf8');
    text.split('\n').forEach((raw, index) => {
      const trimmed = raw.trim();
      if (trimmed === '' || trimmed.startsWith('#')) return;
      if (!line.test(trimmed)) {
        throw new BrlError(`${join(dir, name)}:${index + 1}: bootconfig snippets hold single-line "key = value" entries, got "${trimmed}"`, {
          exitCode: ExitCode.badInput,
          code: 'BAD_BOOTCONFIG',
        });
      }
      lines.push(trimmed);
    });
  }
  if (lines.length === 0) return 'kernel {}\ninit {}\n';
  lines.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return `${lines.join('\n')}\n`;
}

/** `text` NUL-terminated, zero-padded, then le32 size, le32 checksum and the magic (an initrd of its own). */
export function encodeBootconfig(text: string): Buffer {
  const body = Buffer.from(`${text}\0`, 'utf8');
  const unpadded = body.length + 8 + MAGIC.length;
  const padding = (ALIGN - (unpadded % ALIGN)) % ALIGN;
  const size = body.length + padding;
  if (size > MAX_SIZE) {
    throw new BrlError(`bootconfig data is ${size} bytes; the kernel accepts at most ${MAX_SIZE}`, {
      exitCode: ExitCode.badInput,
      code: 'BOOTCONFIG_TOO_LARGE',
    });
  }
  const out = Buffer.alloc(size + 8 + MAGIC.length);
  body.copy(out);
  let checksum = 0;
  for (let i = 0; i < size; i++) checksum = (checksum + (out[i] as number)) >>> 0;
  out.writeUInt32LE(size, size);
  out.writeUInt32LE(checksum, size + 4);
  MAGIC.copy(out, size + 8);
  return out;
}
