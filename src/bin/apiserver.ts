// apiserver: serves the host API on a Unix socket until SIGTERM/SIGINT; no oclif, no AWS SDK.
import { parseArgs } from 'node:util';
import { serveUntilSignal } from '../lib/host/serve.ts';
import { dirname } from 'node:path';
import { ApiServer, SocketInUseError } from '../lib/host/apiserver/server.ts';
import { DatastoreIntegrityError } from '../lib/host/datastore/store.ts';
import { isBrlError } from '../lib/core/errors.ts';
import { hostContainerdLauncher } from '../lib/host/exec/host-containerd.ts';
import { HOST_CONTAINERD_SOCKET } from '../lib/host/paths.ts';

const USAGE = `Usage: apiserver [--root DIR] [--datastore-path PATH] [--socket-path PATH] [--socket-gid GID]
                 [--exec-socket-path PATH] [--updog COMMAND] [--max-body-bytes N] [--log-level LEVEL]

  --root DIR              host root the fixed paths live under (default /)
  --datastore-path PATH   the datastore's 'current' link (default <root>/var/lib/bottlerocket/datastore/current)
  --socket-path PATH      API socket (default <root>/run/api.sock)
  --socket-gid GID        group owning the socket (mode 0660)
  --exec-socket-path PATH host-containerd's socket, where /exec runs commands (default ${HOST_CONTAINERD_SOCKET})
  --updog COMMAND         updog program for update actions (default updog)
  --max-body-bytes N      larger request bodies get 413 (default 1048576)
  --log-level LEVEL       accepted for compatibility with upstream unit files
`;

function usage(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      root: { type: 'string', default: '/' },
      'datastore-path': { type: 'string' },
      'socket-path': { type: 'string' },
      'socket-gid': { type: 'string' },
      'exec-socket-path': { type: 'string', default: HOST_CONTAINERD_SOCKET },
      updog: { type: 'string' },
      'max-body-bytes': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (error) {
  usage((error as Error).message);
}
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const integer = (name: string, text: string | undefined): number | undefined => {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) usage(`--${name} must be a non-negative integer, got '${text}'`);
  return Number(text);
};

try {
  const datastorePath = values['datastore-path'];
  const socketGid = integer('socket-gid', values['socket-gid']);
  const maxBodyBytes = integer('max-body-bytes', values['max-body-bytes']);
  const server = await ApiServer.start({
    root: values.root,
    ...(datastorePath === undefined ? {} : { datastoreBase: dirname(datastorePath) }),
    ...(values['socket-path'] === undefined ? {} : { socketPath: values['socket-path'] }),
    ...(socketGid === undefined ? {} : { socketGid }),
    execLauncher: hostContainerdLauncher(values['exec-socket-path']),
    ...(maxBodyBytes === undefined ? {} : { maxBodyBytes }),
    ...(values.updog === undefined ? {} : { updogCommand: values.updog.split(' ') }),
  });
  process.stderr.write(`apiserver listening on ${server.socketPath}\n`);
  // Ready first, then load the renderer (Handlebars) while the next boot unit's process starts:
  // settings-applier's first render finds it loaded.
  setImmediate(() => void import('../lib/host/render/template.ts'));
  await serveUntilSignal(server);
} catch (error) {
  if (error instanceof DatastoreIntegrityError || error instanceof SocketInUseError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  if (isBrlError(error)) {
    process.stderr.write(`apiserver: ${error.message}\n${error.hint === undefined ? '' : `hint: ${error.hint}\n`}`);
    process.exit(1);
  }
  throw error;
}
