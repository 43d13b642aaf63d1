/**
 * A TCP proxy between a worker and the server that understands WebSocket
 * frames (RFC 6455) well enough to play a slow or different server:
 *
 * - `hold()` keeps every server→worker frame (replies, pushes, heartbeats)
 *   until `release()`, as a stalled server or network would; worker→server
 *   frames still go through, so the server acts on pushes whose replies the
 *   worker will see late or never.
 * - `rewrite` edits server→worker text frames (e.g. to strip capabilities from
 *   the join reply and play a Lightning-like server).
 * - `sent` records the Phoenix frames the worker sent, decoded.
 * - `dropToServer` / `dropToWorker` lose chosen frames on the way, as a
 *   server that dies between reading a push and answering it would (the join
 *   of a run channel never reaches the server; a claim reply never reaches
 *   the worker).
 *
 * The server never negotiates permessage-deflate, so frames are plain. Only
 * what these tests need is handled (no fragmentation across continuation frames).
 */
import type { ExecutionContext } from 'ava';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

/** A Phoenix V2 frame `[join_ref, ref, topic, event, payload]`. */
export type PhoenixFrame = [string | null, string | null, string, string, unknown];

interface Frame {
  opcode: number;
  payload: Buffer;
  /** The frame's bytes as they came (masked, for worker → server): what is forwarded unchanged. */
  raw: Buffer;
}

/** Splits complete frames off the front of `buffer`; `masked` frames are unmasked. */
function takeFrames(buffer: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let offset = 0;
  for (;;) {
    if (buffer.length - offset < 2) break;
    const first = buffer[offset]!;
    const second = buffer[offset + 1]!;
    const masked = (second & 0x80) !== 0;
    let length = second & 0x7f;
    let header = 2;
    if (length === 126) {
      if (buffer.length - offset < 4) break;
      length = buffer.readUInt16BE(offset + 2);
      header = 4;
    } else if (length === 127) {
      if (buffer.length - offset < 10) break;
      length = Number(buffer.readBigUInt64BE(offset + 2));
      header = 10;
    }
    const maskBytes = masked ? 4 : 0;
    if (buffer.length - offset < header + maskBytes + length) break;
    const payload = Buffer.from(buffer.subarray(offset + header + maskBytes, offset + header + maskBytes + length));
    if (masked) {
      const mask = buffer.subarray(offset + header, offset + header + 4);
      for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i % 4]!;
    }
    frames.push({ opcode: first & 0x0f, payload, raw: Buffer.from(buffer.subarray(offset, offset + header + maskBytes + length)) });
    offset += header + maskBytes + length;
  }
  return { frames, rest: buffer.subarray(offset) };
}

/** An unmasked, final frame (server → client). */
function encodeFrame(frame: Pick<Frame, 'opcode' | 'payload'>): Buffer {
  const length = frame.payload.length;
  let header: Buffer;
  if (length < 126) {
    header = Buffer.from([0x80 | frame.opcode, length]);
  } else if (length < 65_536) {
    header = Buffer.alloc(4);
    header[0] = 0x80 | frame.opcode;
    header[1] = 126;
    header.writeUInt16BE(length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | frame.opcode;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  return Buffer.concat([header, frame.payload]);
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** A text frame's Phoenix message, or null when it is not one. */
function parsePhoenix(payload: Buffer): PhoenixFrame | null {
  try {
    const parsed: unknown = JSON.parse(payload.toString('utf8'));
    return Array.isArray(parsed) && parsed.length === 5 ? (parsed as PhoenixFrame) : null;
  } catch {
    return null;
  }
}

/** One direction of one connection: passes the HTTP upgrade head through, then works frame by frame. */
class FrameStream {
  #head = true;
  #buffer = Buffer.alloc(0);
  readonly #onFrame: (frame: Frame) => void;
  readonly #onHead: (raw: Buffer) => void;

  constructor(onHead: (raw: Buffer) => void, onFrame: (frame: Frame) => void) {
    this.#onHead = onHead;
    this.#onFrame = onFrame;
  }

  push(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    if (this.#head) {
      const end = this.#buffer.indexOf(HEADER_END);
      if (end === -1) return;
      this.#onHead(this.#buffer.subarray(0, end + 4));
      this.#buffer = this.#buffer.subarray(end + 4);
      this.#head = false;
    }
    const { frames, rest } = takeFrames(this.#buffer);
    for (const frame of frames) this.#onFrame(frame);
    this.#buffer = Buffer.from(rest);
  }
}

export class SlowServerProxy {
  readonly #server: Server;
  readonly #targetPort: number;
  readonly #sockets = new Set<Socket>();
  readonly #held: Array<{ socket: Socket; data: Buffer }> = [];
  #holding = false;
  /** Edits the payload of a server→worker Phoenix frame; return it unchanged to pass it on. */
  rewrite: ((frame: PhoenixFrame) => PhoenixFrame) | null = null;
  /** Return true to drop a worker → server Phoenix frame: the server never reads it. It is still recorded in `sent`. */
  dropToServer: ((frame: PhoenixFrame) => boolean) | null = null;
  /** Return true to drop a server → worker Phoenix frame (after `rewrite`): the worker never reads it. */
  dropToWorker: ((frame: PhoenixFrame) => boolean) | null = null;
  /** Phoenix frames the worker sent, in order. */
  readonly sent: PhoenixFrame[] = [];
  /** Server→worker Phoenix frames kept back while holding, counted. */
  heldFrames = 0;

  private constructor(server: Server, targetPort: number) {
    this.#server = server;
    this.#targetPort = targetPort;
  }

  static async start(t: ExecutionContext, targetPort: number): Promise<SlowServerProxy> {
    const server = createServer();
    const proxy = new SlowServerProxy(server, targetPort);
    server.on('connection', (client) => proxy.#accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    t.teardown(() => proxy.close());
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** `ws://…/worker` through the proxy. */
  get workerUrl(): string {
    return `ws://127.0.0.1:${this.port}/worker`;
  }

  /** Frames the worker sent with this event name. */
  sentEvents(event: string, topic?: string): PhoenixFrame[] {
    return this.sent.filter((frame) => frame[3] === event && (topic === undefined || frame[2] === topic));
  }

  /** Keeps every server→worker frame from now until `release()`. */
  hold(): void {
    this.#holding = true;
  }

  /** Sends what was held, in order, and stops holding. */
  release(): void {
    this.#holding = false;
    for (const { socket, data } of this.#held.splice(0)) if (!socket.destroyed) socket.write(data);
  }

  /** Cuts every connection (the worker reconnects through the proxy). */
  dropAll(): void {
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    this.#held.length = 0;
  }

  async close(): Promise<void> {
    this.dropAll();
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    const upstream = connect(this.#targetPort, '127.0.0.1');
    this.#sockets.add(client);
    this.#sockets.add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);

    // Worker → server: the upgrade head as it came, then each frame's own (masked) bytes unless dropped.
    const outbound = new FrameStream(
      (head) => upstream.write(head),
      (frame) => {
        const parsed = frame.opcode === 1 ? parsePhoenix(frame.payload) : null;
        if (parsed !== null) this.sent.push(parsed);
        if (parsed !== null && this.dropToServer?.(parsed) === true) return;
        upstream.write(frame.raw);
      },
    );
    client.on('data', (chunk: Buffer) => outbound.push(chunk));

    // Server → worker: re-encoded frame by frame so frames can be held or rewritten.
    const inbound = new FrameStream(
      (head) => client.write(head),
      (frame) => {
        let out: Pick<Frame, 'opcode' | 'payload'> = frame;
        if (frame.opcode === 1 && this.rewrite !== null) {
          try {
            const parsed = JSON.parse(frame.payload.toString('utf8')) as PhoenixFrame;
            out = { opcode: 1, payload: Buffer.from(JSON.stringify(this.rewrite(parsed)), 'utf8') };
          } catch {
            // Not JSON: pass it on as it is.
          }
        }
        const parsed = out.opcode === 1 && this.dropToWorker !== null ? parsePhoenix(out.payload) : null;
        if (parsed !== null && this.dropToWorker?.(parsed) === true) return;
        const data = encodeFrame(out);
        if (this.#holding) {
          this.heldFrames++;
          this.#held.push({ socket: client, data });
        } else {
          client.write(data);
        }
      },
    );
    upstream.on('data', (chunk: Buffer) => inbound.push(chunk));
  }
}
