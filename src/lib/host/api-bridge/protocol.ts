// The API bridge's framing: many socket connections multiplexed over one byte stream (a
// virtio-serial port), because a serial port carries one stream and an HTTP client opens many.
//
// Frame: type (u8), connection id (u32 BE), payload length (u32 BE), payload.
// HELLO (guest → host) starts a session: whatever the host had open belongs to a previous boot.
// OPEN (host → guest) opens a connection to the guest's API socket; DATA carries bytes either way;
// CLOSE (either way) ends the connection on both sides.

/** virtio-serial port name of the API bridge (the guest sees /dev/virtio-ports/<name>). */
export const API_BRIDGE_PORT = 'org.brl.api-bridge';

export const FrameType = { hello: 0, open: 1, data: 2, close: 3 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export interface Frame {
  type: FrameType;
  connection: number;
  payload: Buffer;
}

const HEADER_BYTES = 9;
/** Larger payloads are split: a frame never holds the stream for long. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

export function encodeFrame(type: FrameType, connection: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(connection, 1);
  header.writeUInt32BE(payload.length, 5);
  return Buffer.concat([header, payload]);
}

/** DATA frames for `bytes`, split at MAX_PAYLOAD_BYTES. */
export function encodeData(connection: number, bytes: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += MAX_PAYLOAD_BYTES) {
    frames.push(encodeFrame(FrameType.data, connection, bytes.subarray(offset, offset + MAX_PAYLOAD_BYTES)));
  }
  return frames;
}

/** Reassembles frames from stream chunks of any size. */
export class FrameDecoder {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Frame[] = [];
    while (this.pending.length >= HEADER_BYTES) {
      const type = this.pending.readUInt8(0);
      const length = this.pending.readUInt32BE(5);
      if (type > FrameType.close || length > MAX_PAYLOAD_BYTES) {
        // Start over with the next chunk: the other end's bridge restarts on a corrupt stream and
        // opens its new session with a HELLO, which must not be read as the rest of this garbage.
        this.pending = Buffer.alloc(0);
        throw new Error(`API bridge stream is corrupt: frame type ${type}, length ${length}`);
      }
      if (this.pending.length < HEADER_BYTES + length) break;
      frames.push({
        type: type as FrameType,
        connection: this.pending.readUInt32BE(1),
        payload: Buffer.from(this.pending.subarray(HEADER_BYTES, HEADER_BYTES + length)),
      });
      this.pending = this.pending.subarray(HEADER_BYTES + length);
    }
    return frames;
  }
}
