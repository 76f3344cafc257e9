// The two ends of the API bridge (framing in protocol.ts). The host end serves a Unix socket
// that apiclient uses as if it were the guest's; the guest end connects each bridged connection to
// the guest's own API socket. Either end runs over any Duplex: a virtio-serial port in the guest, the
// QEMU chardev connection on the host, a socket pair in tests.
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { encodeData, encodeFrame, FrameDecoder, FrameType, type Frame } from './protocol.ts';

type FrameHandler = (frame: Frame) => void;

function readFrames(channel: Duplex, onFrame: FrameHandler, onCorrupt: (error: Error) => void): void {
  const decoder = new FrameDecoder();
  channel.on('data', (chunk: Buffer) => {
    let frames: Frame[];
    try {
      frames = decoder.push(chunk);
    } catch (error) {
      onCorrupt(error as Error);
      return;
    }
    for (const frame of frames) onFrame(frame);
  });
}

/** Relays one socket's bytes as DATA frames and its end as CLOSE; returns the cleanup. */
function relaySocket(socket: Socket, connection: number, channel: Duplex, forget: () => void): void {
  socket.on('data', (bytes: Buffer) => {
    for (const frame of encodeData(connection, bytes)) channel.write(frame);
  });
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    forget();
    channel.write(encodeFrame(FrameType.close, connection));
  };
  socket.on('end', close);
  socket.on('close', close);
  socket.on('error', close);
}

export interface HostBridge {
  /** Resolves once the guest end has said HELLO (its API bridge is up). */
  readonly guestReady: Promise<void>;
  close(): Promise<void>;
}

/**
 * Serves `apiSocketPath` on the host and forwards each connection over `channel`. Until the guest end
 * has said HELLO, connections are refused by closing them at once.
 */
export async function startHostBridge(apiSocketPath: string, channel: Duplex): Promise<HostBridge> {
  const clients = new Map<number, Socket>();
  let nextConnection = 1;
  let guestUp = false;
  let markReady: () => void = () => undefined;
  const guestReady = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  const dropAll = () => {
    for (const socket of clients.values()) socket.destroy();
    clients.clear();
  };

  readFrames(channel, (frame) => {
    if (frame.type === FrameType.hello) {
      // A new guest session: connections from before it went to a guest that rebooted.
      dropAll();
      guestUp = true;
      markReady();
      return;
    }
    const client = clients.get(frame.connection);
    if (frame.type === FrameType.data) client?.write(frame.payload);
    else if (frame.type === FrameType.close && client) {
      clients.delete(frame.connection);
      client.end();
    }
  }, () => {
    guestUp = false;
    dropAll();
  });
  channel.on('close', () => {
    guestUp = false;
    dropAll();
  });

  const server: Server = createServer((socket) => {
    if (!guestUp) {
      socket.destroy();
      return;
    }
    const connection = nextConnection++;
    clients.set(connection, socket);
    channel.write(encodeFrame(FrameType.open, connection));
    relaySocket(socket, connection, channel, () => clients.delete(connection));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(apiSocketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    guestReady,
    close: () =>
      new Promise<void>((resolve) => {
        dropAll();
        server.close(() => resolve());
      }),
  };
}

/** The guest end: says HELLO, then opens a connection to `apiSocketPath` for each OPEN. */
export interface GuestBridge {
  closed: Promise<void>;
  /**
   * Resolves once no bridged connection is open, or after `timeoutMs`: at shutdown the bridge stops
   * before apiserver, and a request in flight (`apiclient reboot` itself) still gets its answer.
   */
  drain(timeoutMs: number): Promise<void>;
}

export function startGuestBridge(apiSocketPath: string, channel: Duplex): GuestBridge {
  const connections = new Map<number, Socket>();
  const idleWaiters: (() => void)[] = [];
  const forget = (connection: number): void => {
    connections.delete(connection);
    if (connections.size === 0) for (const wake of idleWaiters.splice(0)) wake();
  };
  readFrames(channel, (frame) => {
    if (frame.type === FrameType.open) {
      const socket = connect(apiSocketPath);
      connections.set(frame.connection, socket);
      relaySocket(socket, frame.connection, channel, () => forget(frame.connection));
      return;
    }
    const socket = connections.get(frame.connection);
    if (frame.type === FrameType.data) {
      // Bytes for a connection this session does not know: the host's side of it must go too.
      if (socket) socket.write(frame.payload);
      else channel.write(encodeFrame(FrameType.close, frame.connection));
    } else if (frame.type === FrameType.close && socket) {
      forget(frame.connection);
      socket.end();
    }
  }, (error) => channel.destroy(error));
  channel.write(encodeFrame(FrameType.hello, 0));
  return {
    drain: (timeoutMs) =>
      connections.size === 0
        ? Promise.resolve()
        : new Promise((resolve) => {
            const timer = setTimeout(resolve, timeoutMs);
            idleWaiters.push(() => {
              clearTimeout(timer);
              resolve();
            });
          }),
    closed: new Promise((resolve) => {
      channel.on('close', () => {
        for (const socket of connections.values()) socket.destroy();
        resolve();
      });
    }),
  };
}
