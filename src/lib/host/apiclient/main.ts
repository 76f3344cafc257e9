// apiclient's command line: raw, get, set, apply, update, reboot, report; exit 0 ok, 1 failure, 2 usage.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { apiCall, apiRequest, ApiStatusError, DEFAULT_SOCKET, randomTxName } from './request.ts';
import type { ExecStreams } from './exec.ts';
import { readStatus, runUpdateAction } from './update.ts';

export interface ClientIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readStdin: () => Promise<string>;
  /** The byte streams `exec` connects to the remote command; the process's own by default. */
  execStreams?: ExecStreams;
}

class UsageError extends Error {
  override readonly name = 'UsageError';
}

const LEVELS = ['error', 'warn', 'info', 'debug', 'trace'] as const;
type Level = (typeof LEVELS)[number];

interface Globals {
  socketPath: string;
  level: Level;
}

const SUBCOMMANDS = ['raw', 'get', 'set', 'apply', 'update', 'reboot', 'report', 'exec', 'ephemeral-storage'];

export const USAGE = `Usage: apiclient [SUBCOMMAND] [OPTION]...

Global options:
  -s, --socket-path PATH   API socket (default ${DEFAULT_SOCKET})
      --log-level LEVEL    error, warn, info, debug or trace (default info)
  -v, --verbose            same as --log-level debug
  -h, --help               this text

Subcommands:
  raw -u URI [-m METHOD] [-d DATA]         send one request, print the body (default subcommand)
  get [PREFIX...] | get URI                 print settings and os (GET /?prefix=...)
  set KEY=VALUE... | set --json JSON        change settings, commit and apply them
  apply [SOURCE...]                         apply TOML or JSON settings from files, file:// or http(s):// URLs, or stdin (-)
  update check | apply [--check] [--reboot] | cancel
  reboot                                    reboot the host
  report [cis [-l 1|2] [-f text|json] | cis-k8s | fips [-f FORMAT]]
  exec [-t|-T] TARGET CMD [ARG...]          run CMD in host container TARGET; exits with its code
                                            (-t terminal, -T pipes; default: a terminal when stdin and stdout are)
`;

/** Runs apiclient with `argv` (without the program name); resolves with the exit code. */
export async function main(argv: readonly string[], io: ClientIo): Promise<number> {
  const globals: Globals = { socketPath: DEFAULT_SOCKET, level: 'info' };
  const log = (level: Level, message: string): void => {
    if (LEVELS.indexOf(level) > LEVELS.indexOf(globals.level)) return;
    const time = new Date().toTimeString().slice(0, 8);
    io.stderr(`${time} [${level.toUpperCase()}] ${message}\n`);
  };
  try {
    const rest = parseGlobals(argv, globals);
    if (rest === 'help') {
      io.stdout(USAGE);
      return 0;
    }
    const index = rest.findIndex((arg) => !arg.startsWith('-'));
    const first = index >= 0 ? rest[index] : undefined;
    let subcommand = 'raw';
    let args = rest;
    if (first !== undefined && SUBCOMMANDS.includes(first)) {
      subcommand = first;
      args = [...rest.slice(0, index), ...rest.slice(index + 1)];
    }
    const socket = globals.socketPath;
    switch (subcommand) {
      case 'raw':
        return await raw(socket, args, io, log);
      case 'get':
        io.stdout(`${await get(socket, args)}\n`);
        return 0;
      case 'set':
        await set(socket, args);
        return 0;
      case 'apply':
        await apply(socket, args, io);
        return 0;
      case 'update':
        return await update(socket, args, io, log);
      case 'reboot':
        if (args.length > 0) throw new UsageError(`reboot takes no arguments, got '${args.join(' ')}'`);
        await apiCall(socket, 'POST', '/actions/reboot');
        log('info', 'Rebooting, goodbye...');
        return 0;
      case 'report':
        io.stdout(`${await report(socket, args)}\n`);
        return 0;
      case 'exec':
        return await exec(socket, args, io);
      default:
        throw new Error(`'${subcommand}' is not supported by this apiclient`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`${error.message}\n\n${USAGE}`);
      return 2;
    }
    log('error', (error as Error).message);
    return 1;
  }
}

function parseGlobals(argv: readonly string[], globals: Globals): string[] | 'help' {
  const rest: string[] = [];
  const positional: string[] = [];
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] as string;
    // `exec TARGET CMD…`: everything from CMD on belongs to the remote command, dashes included.
    if (positional[0] === 'exec' && positional.length === 2 && !arg.startsWith('-')) {
      rest.push(...argv.slice(index));
      break;
    }
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      if (inline !== undefined) return inline;
      const next = argv[index + 1];
      if (next === undefined) throw new UsageError(`${flag} needs a value`);
      index += 1;
      return next;
    };
    if (flag === '-s' || flag === '--socket-path') globals.socketPath = value();
    else if (flag === '--log-level') {
      const level = value();
      if (!(LEVELS as readonly string[]).includes(level)) throw new UsageError(`unknown log level '${level}'`);
      globals.level = level as Level;
    } else if (flag === '-v' || flag === '--verbose') globals.level = 'debug';
    else if (flag === '-h' || flag === '--help') return 'help';
    else {
      if (!arg.startsWith('-')) positional.push(arg);
      rest.push(arg);
    }
  }
  return rest;
}

/** Splits subcommand options; `spec` maps each flag to whether it takes a value. */
function parseOptions(args: readonly string[], spec: Record<string, boolean>): { options: Map<string, string[]>; positional: string[] } {
  const options = new Map<string, string[]>();
  const positional: string[] = [];
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index] as string;
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const takesValue = spec[arg];
    if (takesValue === undefined) throw new UsageError(`unknown option '${arg}'`);
    let value = '';
    if (takesValue) {
      const next = args[index + 1];
      if (next === undefined) throw new UsageError(`${arg} needs a value`);
      value = next;
      index += 1;
    }
    options.set(arg, [...(options.get(arg) ?? []), value]);
  }
  return { options, positional };
}

function one(options: Map<string, string[]>, ...names: string[]): string | undefined {
  const values = names.flatMap((name) => options.get(name) ?? []);
  if (values.length > 1) throw new UsageError(`${names.join('/')} given more than once`);
  return values[0];
}

async function raw(socket: string, args: readonly string[], io: ClientIo, log: (level: Level, message: string) => void): Promise<number> {
  const { options, positional } = parseOptions(args, {
    '-u': true, '--uri': true, '-m': true, '-X': true, '--method': true, '-d': true, '--data': true,
  });
  if (positional.length > 0) throw new UsageError(`unexpected argument '${positional[0]}'`);
  const uri = one(options, '-u', '--uri');
  if (uri === undefined) throw new UsageError('raw needs -u/--uri');
  const method = (one(options, '-m', '-X', '--method') ?? 'GET').toUpperCase();
  const response = await apiRequest(socket, method, uri, one(options, '-d', '--data'));
  log('debug', `Status ${response.status} ${response.statusText}`);
  if (response.status < 200 || response.status > 299) throw new ApiStatusError(method, uri, response);
  io.stdout(`${response.body}\n`);
  return 0;
}

async function get(socket: string, args: readonly string[]): Promise<string> {
  for (const arg of args) if (arg.startsWith('-')) throw new UsageError(`unknown option '${arg}'`);
  const uris = args.filter((arg) => arg.startsWith('/'));
  const prefixes = args.filter((arg) => !arg.startsWith('/'));
  if (uris.length > 0 && prefixes.length > 0) throw new UsageError('get takes either prefixes or one URI, not both');
  if (uris.length > 1) throw new UsageError('get takes at most one URI');
  if (uris.length === 1) return JSON.stringify(JSON.parse(await apiCall(socket, 'GET', uris[0] as string)), null, 2);
  let merged: Record<string, unknown> = {};
  for (const prefix of prefixes.length > 0 ? prefixes : ['os.', 'settings.']) {
    const part = JSON.parse(await apiCall(socket, 'GET', `/?prefix=${prefix}`)) as Record<string, unknown>;
    merged = mergeDeep(merged, part);
  }
  return JSON.stringify(merged, null, 2);
}

function mergeDeep(base: Record<string, unknown>, overlay: Record<string, unknown>): Record<string, unknown> {
  const isObject = (value: unknown): value is Record<string, unknown> =>
    typeof value === 'object' && value !== null && !Array.isArray(value);
  const merged = { ...base };
  for (const [key, value] of Object.entries(overlay)) {
    const existing = merged[key];
    merged[key] = isObject(existing) && isObject(value) ? mergeDeep(existing, value) : value;
  }
  return merged;
}

async function set(socket: string, args: readonly string[]): Promise<void> {
  const { options, positional } = parseOptions(args, { '-j': true, '--json': true });
  const json = one(options, '-j', '--json');
  if (json !== undefined && positional.length > 0) throw new UsageError('set takes key=value pairs or --json, not both');
  if (json === undefined && positional.length === 0) throw new UsageError('set needs key=value pairs or --json');
  const tx = randomTxName('apiclient-set');
  if (json !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch (error) {
      throw new Error(`Invalid JSON given to --json: ${(error as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new Error('JSON input must be an object');
    }
    const record = parsed as Record<string, unknown>;
    const settings = Object.keys(record).length === 1 && 'settings' in record ? record.settings : record;
    await apiCall(socket, 'PATCH', `/settings?tx=${tx}`, JSON.stringify(settings));
  } else {
    for (const pair of positional) if (!pair.includes('=')) throw new UsageError(`expected key=value, got '${pair}'`);
    await apiCall(socket, 'PATCH', `/settings/keypair?tx=${tx}`, JSON.stringify({ request_payload: positional }));
  }
  await apiCall(socket, 'POST', `/tx/commit_and_apply?tx=${tx}`);
}

const MAX_PARALLEL_FETCHES = 4;

async function apply(socket: string, args: readonly string[], io: ClientIo): Promise<void> {
  for (const arg of args) if (arg.startsWith('-') && arg !== '-') throw new UsageError(`unknown option '${arg}'`);
  const sources = args.length > 0 ? args : ['-'];
  const texts: string[] = new Array<string>(sources.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < sources.length) {
      const index = next++;
      texts[index] = await readSource(sources[index] as string, io);
    }
  };
  await Promise.all(Array.from({ length: Math.min(MAX_PARALLEL_FETCHES, sources.length) }, worker));
  const tx = randomTxName('apiclient-apply');
  for (const [index, text] of texts.entries()) {
    const source = sources[index] as string;
    const document = await parseSettingsDocument(text, source === '-' ? 'standard input' : source);
    await apiCall(socket, 'PATCH', `/settings?tx=${tx}`, JSON.stringify(document.settings));
  }
  await apiCall(socket, 'POST', `/tx/commit_and_apply?tx=${tx}`);
}

async function readSource(source: string, io: ClientIo): Promise<string> {
  if (source === '-') return io.readStdin();
  if (source.startsWith('http://') || source.startsWith('https://')) {
    const response = await fetch(source);
    if (!response.ok) throw new Error(`Failed to fetch '${source}': HTTP ${response.status}`);
    return response.text();
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source) && !source.startsWith('file://')) {
    throw new Error(`'${source}' is not a file://, http:// or https:// URI`);
  }
  const path = source.startsWith('file://') ? fileURLToPath(source) : source;
  return readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    // Spelled out here rather than through core/errors.ts: apiclient loads nothing outside its folder.
    const reasons: Record<string, string> = { ENOENT: 'does not exist', EISDIR: 'is a directory, not a file', EACCES: 'cannot be read: permission denied' };
    const reason = error.code === undefined ? undefined : reasons[error.code];
    throw reason === undefined ? error : new Error(`settings file ${path} ${reason}`);
  });
}

/** TOML first, then JSON; either way a top-level `settings` table is required. */
async function parseSettingsDocument(text: string, source: string): Promise<{ settings: Record<string, unknown> }> {
  let document: unknown;
  try {
    const { parse } = await import('smol-toml');
    document = parse(text);
  } catch (tomlError) {
    try {
      document = JSON.parse(text);
    } catch {
      throw new Error(`Settings from '${source}' are neither TOML nor JSON: ${(tomlError as Error).message.split('\n')[0]}`);
    }
  }
  const settings = (document as { settings?: unknown } | null)?.settings;
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
    throw new Error(`Settings from '${source}' did not contain a 'settings' key at top level`);
  }
  return { settings: settings as Record<string, unknown> };
}

async function update(socket: string, args: readonly string[], io: ClientIo, log: (level: Level, message: string) => void): Promise<number> {
  const [action, ...rest] = args;
  if (action === 'check') {
    if (rest.length > 0) throw new UsageError(`update check takes no arguments, got '${rest.join(' ')}'`);
    io.stdout(`${JSON.stringify(JSON.parse(await runUpdateAction(socket, 'refresh')), null, 2)}\n`);
    return 0;
  }
  if (action === 'cancel') {
    if (rest.length > 0) throw new UsageError(`update cancel takes no arguments, got '${rest.join(' ')}'`);
    await runUpdateAction(socket, 'deactivate');
    return 0;
  }
  if (action !== 'apply') throw new UsageError("update needs 'check', 'apply' or 'cancel'");
  const { options, positional } = parseOptions(rest, { '-c': false, '--check': false, '-r': false, '--reboot': false });
  if (positional.length > 0) throw new UsageError(`unexpected argument '${positional[0]}'`);
  if (options.has('-c') || options.has('--check')) {
    await runUpdateAction(socket, 'refresh');
    const state = (await readStatus(socket)).update_state;
    if (state === 'Idle') {
      log('info', 'No updates available.');
      return 0;
    }
    if (state === 'Ready') {
      log('info', 'Update already applied; reboot for it to take effect, or request a cancel to cancel it.');
      return 0;
    }
  }
  await runUpdateAction(socket, 'prepare');
  await runUpdateAction(socket, 'activate');
  if (options.has('-r') || options.has('--reboot')) {
    await apiCall(socket, 'POST', '/actions/reboot');
    log('info', 'Rebooting, goodbye...');
  } else {
    log('info', 'Update has been applied and will take effect on next reboot.');
  }
  return 0;
}

async function report(socket: string, args: readonly string[]): Promise<string> {
  const [kind, ...rest] = args;
  if (kind === undefined) return apiCall(socket, 'GET', '/report');
  const { options, positional } = parseOptions(rest, { '-l': true, '--level': true, '-f': true, '--format': true });
  if (positional.length > 0) throw new UsageError(`unexpected argument '${positional[0]}'`);
  const query = new URLSearchParams();
  const level = one(options, '-l', '--level');
  const format = one(options, '-f', '--format');
  if (kind === 'cis' || kind === 'cis-k8s') {
    query.set('type', kind === 'cis' ? 'bottlerocket' : 'kubernetes');
    if (level !== undefined) query.set('level', level);
    if (format !== undefined) query.set('format', format);
    return apiCall(socket, 'GET', `/report/cis?${query}`);
  }
  if (kind === 'fips') {
    if (format !== undefined) query.set('format', format);
    const search = query.toString();
    return apiCall(socket, 'GET', `/report/fips${search ? `?${search}` : ''}`);
  }
  throw new UsageError(`unknown report '${kind}' (expected cis, cis-k8s or fips)`);
}

async function exec(socket: string, args: readonly string[], io: ClientIo): Promise<number> {
  let tty: boolean | undefined;
  let index = 0;
  for (; index < args.length && (args[index] as string).startsWith('-'); index += 1) {
    const flag = args[index];
    if (flag === '-t' || flag === '--tty') tty = true;
    else if (flag === '-T' || flag === '--no-tty') tty = false;
    else throw new UsageError(`unknown exec option '${flag}'`);
  }
  const [target, ...command] = args.slice(index);
  if (target === undefined) throw new UsageError('exec needs a TARGET host container and a command');
  if (command.length === 0) throw new UsageError(`exec needs a command to run in '${target}'`);
  const { runExec, processStreams } = await import('./exec.ts');
  return await runExec({ socketPath: socket, target, command, tty }, io.execStreams ?? processStreams());
}
