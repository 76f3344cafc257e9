// HTTP/1.1 requests to the apiserver's Unix socket over node:net: loading node:http alone would
// cost apiclient about 30 ms of start-up, and one request per connection needs very little of it.
import { connect } from 'node:net';

export const DEFAULT_SOCKET = '/run/api.sock';

export interface ApiResponse {
  status: number;
  statusText: string;
  body: string;
}

/** A non-2xx answer; the message quotes the server's text as is, in upstream apiclient's wording. */
export class ApiStatusError extends Error {
  override readonly name = 'ApiStatusError';
  readonly status: number;
  readonly body: string;

  constructor(method: string, uri: string, response: ApiResponse) {
    const verb = method === 'GET' ? 'GETting' : `${method}ing`;
    super(`Failed ${method} request to '${uri}': Status ${response.status} when ${verb} ${uri}: ${response.body}`);
    this.status = response.status;
    this.body = response.body;
  }
}

/**
 * One request on its own connection (`Connection: close`); every request carries
 * `Content-Type: application/json`, as upstream sends.
 */
export function apiRequest(socketPath: string, method: string, uri: string, body?: string): Promise<ApiResponse> {
  if (!/^[A-Z]+$/.test(method)) return Promise.reject(new Error(`Invalid HTTP method '${method}'`));
  if (!/^\/[\x21-\x7e]*$/.test(uri)) return Promise.reject(new Error(`Invalid URI '${uri}': it must start with / and hold no spaces`));
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(body, 'utf8');
    const socket = connect(socketPath);
    const chunks: Buffer[] = [];
    let failure: Error | undefined;
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      failure =
        error.code === 'ENOENT' || error.code === 'ECONNREFUSED'
          ? new Error(`Failed to connect to the API socket ${socketPath}: ${error.code} (is apiserver running?)`)
          : error;
    });
    // The server may reset rather than close once it has answered; whatever was received decides.
    socket.on('close', () => {
      if (chunks.length === 0 && failure) {
        reject(failure);
        return;
      }
      try {
        resolve(parseResponse(Buffer.concat(chunks), method, uri));
      } catch (error) {
        reject(failure ?? error);
      }
    });
    // No half-close after the request: node:http servers abort a request whose client sent FIN.
    socket.write(
      `${method} ${uri} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${payload.length}\r\nConnection: close\r\n\r\n`,
    );
    if (payload.length > 0) socket.write(payload);
  });
}

function parseResponse(raw: Buffer, method: string, uri: string): ApiResponse {
  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd < 0) throw new Error(`Incomplete HTTP response to ${method} ${uri}`);
  const [statusLine = '', ...headerLines] = raw.subarray(0, headEnd).toString('latin1').split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine);
  if (!match) throw new Error(`Malformed HTTP status line from ${method} ${uri}: '${statusLine}'`);
  const headers = new Map<string, string>();
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  let bodyBytes = raw.subarray(headEnd + 4);
  if (headers.get('transfer-encoding')?.toLowerCase() === 'chunked') bodyBytes = dechunk(bodyBytes);
  else if (headers.has('content-length')) bodyBytes = bodyBytes.subarray(0, Number(headers.get('content-length')));
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bodyBytes);
  } catch {
    throw new Error(`Response from ${method} ${uri} is not valid UTF-8`);
  }
  return { status: Number(match[1]), statusText: match[2] ?? '', body: text };
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', offset);
    if (lineEnd < 0) break;
    const size = Number.parseInt(data.subarray(offset, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    offset = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** Like `apiRequest`, but a non-2xx status is an `ApiStatusError`. */
export async function apiCall(socketPath: string, method: string, uri: string, body?: string): Promise<string> {
  const response = await apiRequest(socketPath, method, uri, body);
  if (response.status < 200 || response.status > 299) throw new ApiStatusError(method, uri, response);
  return response.body;
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** Transaction names like upstream's `apiclient-set-<16 alnum>`. */
export function randomTxName(prefix: string): string {
  let suffix = '';
  for (let index = 0; index < 16; index += 1) suffix += ALNUM[Math.floor(Math.random() * ALNUM.length)];
  return `${prefix}-${suffix}`;
}
