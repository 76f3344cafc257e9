// The `/exec` WebSocket protocol (Bottlerocket's, spec host-api §7.4): Text frames carry JSON control
// messages with serde's external tagging, Binary frames carry the process's bytes.

export interface TtySize {
  rows: number;
  cols: number;
}

export interface InitializeRequest {
  command: string[];
  target: string;
  /** A terminal of this size, or pipes when null. */
  tty: { size: TtySize } | null;
}

export type ClientMessage =
  | { kind: 'initialize'; request: InitializeRequest }
  | { kind: 'winch'; size: TtySize }
  | { kind: 'content-complete' };

export interface Capacity {
  max_messages_outstanding: number;
  messages_written: number;
}

/** Close codes from RFC 6455 §7.4.1 under the names the upstream server uses. */
export const CloseCode = {
  normal: 1000,
  away: 1001,
  invalid: 1007,
  policy: 1008,
  size: 1009,
  error: 1011,
} as const;

/** How many client messages may be unwritten at once; the server says so at the start. */
export const MAX_MESSAGES_OUTSTANDING = 1024;
/** The server repeats its Capacity message after this many writes. */
export const CAPACITY_EVERY = 128;

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly closeCode: number;

  constructor(message: string, closeCode: number = CloseCode.invalid) {
    super(message);
    this.closeCode = closeCode;
  }
}

export function encodeClientMessage(message: ClientMessage): string {
  switch (message.kind) {
    case 'initialize':
      return JSON.stringify({ Initialize: message.request });
    case 'winch':
      return JSON.stringify({ Winch: message.size });
    case 'content-complete':
      return JSON.stringify('ContentComplete');
  }
}

/** Parses a Text frame from the client; anything else is a ProtocolError naming what was wrong. */
export function parseClientMessage(text: string): ClientMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ProtocolError(`control message is not JSON: ${(error as Error).message}`);
  }
  if (value === 'ContentComplete') return { kind: 'content-complete' };
  if (!isObject(value) || Object.keys(value).length !== 1) {
    throw new ProtocolError('control message must be "ContentComplete" or an object with one of Initialize, Winch');
  }
  const [tag, body] = Object.entries(value)[0]!;
  switch (tag) {
    case 'Initialize':
      return { kind: 'initialize', request: parseInitialize(body) };
    case 'Winch':
      return { kind: 'winch', size: parseSize(body, 'Winch') };
    default:
      throw new ProtocolError(`unknown control message ${JSON.stringify(tag)}`);
  }
}

export function encodeCapacity(capacity: Capacity): string {
  return JSON.stringify({ Capacity: capacity });
}

/** Server Text frames: only Capacity is defined. */
export function parseServerMessage(text: string): Capacity {
  const value: unknown = JSON.parse(text);
  if (!isObject(value) || !isObject(value.Capacity)) throw new ProtocolError(`unknown server message ${text.slice(0, 80)}`);
  const { max_messages_outstanding: max, messages_written: written } = value.Capacity;
  if (!isCount(max) || !isCount(written)) throw new ProtocolError(`malformed Capacity message ${text.slice(0, 80)}`);
  return { max_messages_outstanding: max, messages_written: written };
}

function parseInitialize(body: unknown): InitializeRequest {
  if (!isObject(body)) throw new ProtocolError('Initialize must be an object');
  const { command, target, tty } = body;
  if (!Array.isArray(command) || command.length === 0 || !command.every((part) => typeof part === 'string')) {
    throw new ProtocolError('Initialize.command must be a non-empty list of strings');
  }
  if (typeof target !== 'string' || target === '') throw new ProtocolError('Initialize.target must be a container name');
  if (tty === null || tty === undefined) return { command, target, tty: null };
  if (!isObject(tty)) throw new ProtocolError('Initialize.tty must be null or {"size": {"rows": R, "cols": C}}');
  return { command, target, tty: { size: parseSize(tty.size, 'Initialize.tty.size') } };
}

function parseSize(body: unknown, where: string): TtySize {
  if (!isObject(body) || !isDimension(body.rows) || !isDimension(body.cols)) {
    throw new ProtocolError(`${where} must be {"rows": R, "cols": C} with whole numbers 0..65535`);
  }
  return { rows: body.rows, cols: body.cols };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isDimension(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 0xffff;
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
