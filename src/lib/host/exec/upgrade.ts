// Takes WebSocket upgrades for `/exec` off the apiserver's HTTP server; every other upgrade is refused.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import type { ExecLauncher } from './launcher.ts';
import { runExecSession, type SessionOptions } from './session.ts';

export const EXEC_PATH = '/exec';
/** One stdin message; apiclient sends what one read of its stdin gives (64 KiB at most). */
const MAX_MESSAGE_BYTES = 1024 * 1024;

export interface ExecEndpoint {
  /** Closes every session (their commands are killed). */
  close(): void;
}

export function attachExec(server: Server, launcher: ExecLauncher, options: SessionOptions = {}): ExecEndpoint {
  // `ws` is loaded with the first session: the apiserver starts on the boot's path to API ready,
  // and most hosts never exec.
  let sockets: Promise<WebSocketServer> | undefined;
  let closed = false;
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (path !== EXEC_PATH || request.method !== 'GET') {
      refuseNotFound(socket, `No WebSocket endpoint at ${path}`);
      return;
    }
    sockets ??= import('ws').then(({ WebSocketServer: Sockets }) => new Sockets({ noServer: true, maxPayload: MAX_MESSAGE_BYTES }));
    void sockets.then((wss) => {
      if (closed) socket.destroy();
      else wss.handleUpgrade(request, socket, head, (webSocket) => runExecSession(webSocket, launcher, options));
    });
  });
  return {
    close: () => {
      closed = true;
      void sockets?.then((wss) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
      });
    },
  };
}

function refuseNotFound(socket: Duplex, text: string): void {
  socket.end(`HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
}
