import { Flags } from '@oclif/core';
import { BRL_UPDOG } from '../lib/host/apiserver/updates.ts';
import { BrlCommand } from '../lib/cli/base-command.ts';
import { BrlError, ExitCode } from '../lib/core/errors.ts';
import { ApiServer, SocketInUseError } from '../lib/host/apiserver/server.ts';
import { hostContainerdLauncher } from '../lib/host/exec/host-containerd.ts';
import { HOST_CONTAINERD_SOCKET } from '../lib/host/paths.ts';
import { DatastoreIntegrityError } from '../lib/host/datastore/store.ts';
import { serveUntilSignal } from '../lib/host/serve.ts';

export default class Apiserver extends BrlCommand<{ socket: string }> {
  static override summary = 'Serve the host API (Bottlerocket routes) on a Unix socket until interrupted.';
  static override description =
    'Serves the datastore under --root (var/lib/bottlerocket/datastore) over HTTP/1.1 on a Unix socket, mode 0660. Run `brl host boot` first to create and seed the datastore. The same server is installed on hosts as bin/apiserver.';
  static override examples = [
    '<%= config.bin %> apiserver --root build/dev-root',
    '<%= config.bin %> apiserver --root / --socket /run/api.sock --socket-gid 274',
  ];

  static override flags = {
    root: Flags.string({ description: 'host root the fixed paths live under', default: '/' }),
    socket: Flags.string({ description: 'API socket path (default <root>/run/api.sock)' }),
    'socket-gid': Flags.integer({ description: 'group that owns the socket', min: 0 }),
    'exec-socket-path': Flags.string({ description: 'host-containerd socket where /exec runs commands in host containers', default: HOST_CONTAINERD_SOCKET }),
    updog: Flags.string({ description: 'updog command for update actions (default: brl\'s bin/updog)', default: BRL_UPDOG }),
    'max-body-bytes': Flags.integer({ description: 'larger request bodies get 413', min: 1 }),
  };

  async run(): Promise<{ socket: string }> {
    const { flags } = await this.parse(Apiserver);
    let server: ApiServer;
    try {
      server = await ApiServer.start({
        root: flags.root,
        updogCommand: flags.updog.split(' '),
        ...(flags.socket === undefined ? {} : { socketPath: flags.socket }),
        ...(flags['socket-gid'] === undefined ? {} : { socketGid: flags['socket-gid'] }),
        execLauncher: hostContainerdLauncher(flags['exec-socket-path']),
        ...(flags['max-body-bytes'] === undefined ? {} : { maxBodyBytes: flags['max-body-bytes'] }),
      });
    } catch (error) {
      if (error instanceof SocketInUseError) {
        throw new BrlError(error.message, { hint: 'stop the other apiserver first', exitCode: ExitCode.conflict, code: 'SOCKET_IN_USE' });
      }
      if (!(error instanceof DatastoreIntegrityError)) throw error;
      throw new BrlError(error.message, {
        hint: `create and seed it with: brl host boot --root ${flags.root}`,
        exitCode: ExitCode.notFound,
        code: 'NO_DATASTORE',
      });
    }
    this.say(`serving the API on ${server.socketPath} (Ctrl-C to stop)`);
    await serveUntilSignal(server);
    return { socket: server.socketPath };
  }
}
