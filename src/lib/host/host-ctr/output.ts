// A host container's stdout and stderr, as host-ctr passes them on to its own stderr (the unit's
// journal): one prefixed line at a time, lines cut at a byte limit, memory bounded whatever the
// container writes, and reading held while the sink is behind.

/** The longest line passed on whole, in bytes of the container's output (journald's LineMax is 48 KiB). */
export const MAX_LINE_BYTES = 16 * 1024;

/** Where a cut line ends, in place of what was dropped. */
export function cutMarker(maxBytes: number): string {
  return ` [… line cut at ${maxBytes} bytes]`;
}

/** The length of `bytes` without a UTF-8 sequence that a cut left incomplete at its end. */
function completeUtf8(bytes: Buffer): number {
  let lead = bytes.length - 1;
  while (lead >= 0 && bytes.length - lead < 4 && ((bytes[lead] as number) & 0xc0) === 0x80) lead--;
  if (lead < 0) return bytes.length;
  const first = bytes[lead] as number;
  const needed = first >= 0xf0 ? 4 : first >= 0xe0 ? 3 : first >= 0xc0 ? 2 : 1;
  return bytes.length - lead < needed ? lead : bytes.length;
}

/**
 * Splits a byte stream into lines (without `\n`, nor a `\r` before it). A line longer than
 * `maxBytes` is passed on at once as its first `maxBytes` (whole characters) and the cut marker,
 * and the rest of it up to its newline is dropped: what is held never exceeds `maxBytes`.
 */
export class LineCutter {
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Dropping the rest of a cut line until its newline. */
  private dropping = false;
  private readonly maxBytes: number;

  constructor(maxBytes = MAX_LINE_BYTES) {
    this.maxBytes = maxBytes;
  }

  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    for (let start = 0; start < chunk.length; ) {
      const newline = chunk.indexOf(0x0a, start);
      const end = newline === -1 ? chunk.length : newline;
      if (!this.dropping) {
        const room = this.maxBytes - this.heldBytes;
        if (end - start > room) {
          this.hold(chunk.subarray(start, start + room));
          lines.push(this.take(true));
          this.dropping = true;
        } else {
          this.hold(chunk.subarray(start, end));
          if (newline !== -1) lines.push(this.take(false));
        }
      }
      if (newline === -1) break;
      this.dropping = false;
      start = newline + 1;
    }
    return lines;
  }

  /** The last line, when the stream ended without a newline. */
  end(): string[] {
    return this.heldBytes > 0 && !this.dropping ? [this.take(false)] : [];
  }

  private hold(bytes: Buffer): void {
    if (bytes.length === 0) return;
    // A copy: a view would keep the whole chunk alive.
    this.held.push(Buffer.from(bytes));
    this.heldBytes += bytes.length;
  }

  private take(cut: boolean): string {
    const bytes = Buffer.concat(this.held, this.heldBytes);
    this.held = [];
    this.heldBytes = 0;
    if (cut) return bytes.toString('utf8', 0, completeUtf8(bytes)) + cutMarker(this.maxBytes);
    return bytes.toString('utf8', 0, bytes.at(-1) === 0x0d ? bytes.length - 1 : bytes.length);
  }
}

/** Takes one line; a promise returned holds reading until it settles (back-pressure to the container). */
export type LineSink = (line: string) => void | Promise<void>;

/**
 * Passes `source`'s lines to `sink`, each after `prefix`, until the source ends or fails (a FIFO
 * destroyed on the way ends it too). Reads one chunk at a time, and the next only when the sink has
 * taken the lines of the last.
 */
export async function forwardLines(source: AsyncIterable<Buffer>, prefix: string, sink: LineSink, maxBytes = MAX_LINE_BYTES): Promise<void> {
  const cutter = new LineCutter(maxBytes);
  try {
    for await (const chunk of source) {
      for (const line of cutter.push(chunk)) await sink(prefix + line);
    }
  } catch {
    // A source destroyed before its end (output abandoned after a deadline): what came is passed on.
  }
  for (const line of cutter.end()) await sink(prefix + line);
}
