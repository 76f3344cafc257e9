// api-bridge: the guest end of `brl vm run`'s API bridge. Relays the virtio-serial port's connections
// to the local API socket; runs only on images built with the api-bridge feature.
import { createReadStream, createWriteStream, openSync } from 'node:fs';
import { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { startGuestBridge } from '../lib/host/api-bridge/bridge.ts';
import { API_BRIDGE_PORT } from '../lib/host/api-bridge/protocol.ts';
import { DEFAULT_SOCKET } from '../lib/host/apiclient/request.ts';

const USAGE = `Usage: api-bridge [--port PATH] [--socket-path PATH]

  --port PATH          virtio-serial port (default /dev/virtio-ports/${API_BRIDGE_PORT})
  --socket-path PATH   API socket (default ${DEFAULT_SOCKET})
`;

let values;
try {
  ({ values } = parseArgs({
    options: {
      port: { type: 'string', default: `/dev/virtio-ports/${API_BRIDGE_PORT}` },
      'socket-path': { type: 'string', default: DEFAULT_SOCKET },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

let fd: number;
try {
  fd = openSync(values.port, 'r+');
} catch (error) {
  process.stderr.write(`api-bridge: cannot open ${values.port}: ${(error as NodeJS.ErrnoException).code ?? String(error)}\n`);
  process.exit(1);
}
// A serial port is a character device: libuv reads it through the thread pool, so fs streams, not net.Socket.
const port = Duplex.from({
  readable: createReadStream('', { fd, autoClose: false, highWaterMark: 64 * 1024 }),
  writable: createWriteStream('', { fd, autoClose: false }),
});
const bridge = startGuestBridge(values['socket-path'], port);
// process.exit() would wait forever for the thread-pool read that is blocked on the port (libuv joins
// its threads at exit): once drained, end the way SIGTERM does by default, which systemd counts as clean.
// The drain ends as soon as the last bridged request is answered; its bound is generous because the
// answer to POST /actions/reboot comes only once `systemctl reboot` returns, which on a loaded host
// took over 5 s while systemd was already stopping units (apiclient reboot then saw no answer).
process.once('SIGTERM', () => {
  void bridge.drain(30_000).then(() => process.kill(process.pid, 'SIGTERM'));
});
await bridge.closed;
process.stderr.write('api-bridge: the port closed\n');
process.exit(1);
