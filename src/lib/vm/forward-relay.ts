// One guest connection of a `brl vm run --forward`: QEMU's user network runs this program per
// connection (guestfwd=…-cmd:) with the connection on stdin/stdout, and it relays the bytes to
// 127.0.0.1:PORT. (A guestfwd to a `tcp:` chardev is one connection for the VM's whole life, so
// a guest's second HTTP connection would hang.)
import { connect } from 'node:net';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write(`forward-relay: bad port ${process.argv[2]}\n`);
  process.exit(2);
}
const upstream = connect(port, '127.0.0.1');
process.stdin.pipe(upstream);
upstream.pipe(process.stdout);
upstream.on('error', () => process.exit(1));
upstream.on('close', () => process.exit(0));
process.stdin.on('error', () => upstream.destroy());
