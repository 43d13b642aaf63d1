/**
 * A raw `ws` connection to the worker endpoint, for tests that send frames the
 * phoenix client would never send: it records every frame the server sends
 * back and waits for the reply to a given ref with a deadline. Closed at
 * teardown.
 */
import type { ExecutionContext } from 'ava';
import WebSocket from 'ws';
import { signWorkerToken } from '../../src/protocol/index.ts';
import type { LanesServer } from '../../src/server/index.ts';
import { TEST_SECRET, waitFor } from './helpers.ts';

export type ServerFrame = [string | null, string | null, string, string, unknown];

export interface RawSocket {
  ws: WebSocket;
  /** Every text frame received, parsed. */
  frames: ServerFrame[];
  /** Binary frames received. */
  binaries: Buffer[];
  /** Resolves with the close code once the server closed the socket. */
  closed: Promise<number>;
  send(frame: unknown): void;
  /** The `phx_reply` to `ref`, waited for with a deadline. */
  reply(ref: string, timeoutMs?: number): Promise<{ status: string; response: unknown; topic: string }>;
  /** Every reply received so far, by ref (a ref may be answered more than once if the sender reused it). */
  repliesByRef(): Map<string, number>;
}

export async function connectRaw(t: ExecutionContext, server: LanesServer, workerId = 'raw-worker'): Promise<RawSocket> {
  const token = await signWorkerToken(TEST_SECRET, workerId);
  const ws = new WebSocket(`${server.workerUrl}/websocket?vsn=2.0.0&token=${token}`);
  t.teardown(() => ws.terminate());
  const frames: ServerFrame[] = [];
  const binaries: Buffer[] = [];
  ws.on('message', (data, isBinary) => {
    const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (isBinary) binaries.push(buffer);
    else frames.push(JSON.parse(buffer.toString('utf8')) as ServerFrame);
  });
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const findReply = (ref: string) => frames.find((frame) => frame[1] === ref && frame[3] === 'phx_reply');
  return {
    ws,
    frames,
    binaries,
    closed,
    send(frame: unknown) {
      ws.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
    },
    async reply(ref: string, timeoutMs = 5_000) {
      const frame = await waitFor(() => findReply(ref), { timeoutMs, message: `reply to ${ref}` });
      const payload = frame[4] as { status: string; response: unknown };
      return { status: payload.status, response: payload.response, topic: frame[2] };
    },
    repliesByRef() {
      const counts = new Map<string, number>();
      for (const frame of frames) {
        if (frame[3] === 'phx_reply' && frame[1] !== null) counts.set(frame[1], (counts.get(frame[1]) ?? 0) + 1);
      }
      // Binary replies (a `fetch:dataclip` answer) in the phoenix layout: kind 1, four one-byte
      // lengths (join ref, ref, topic, status), then those fields and the payload.
      for (const buffer of binaries) {
        if (buffer.length < 5 || buffer[0] !== 1) continue;
        const joinRefSize = buffer[1] ?? 0;
        const refSize = buffer[2] ?? 0;
        const ref = buffer.subarray(5 + joinRefSize, 5 + joinRefSize + refSize).toString('utf8');
        counts.set(ref, (counts.get(ref) ?? 0) + 1);
      }
      return counts;
    },
  };
}

/** A binary push in the layout the phoenix client writes (`kind=0`, four one-byte lengths, fields, payload). */
export function binaryPush(joinRef: string, ref: string, topic: string, event: string, payload: Uint8Array): Buffer {
  const fields = [joinRef, ref, topic, event].map((field) => Buffer.from(field, 'utf8'));
  return Buffer.concat([Buffer.from([0, ...fields.map((field) => field.length)]), ...fields, payload]);
}
