/**
 * The worker endpoint's states, from the outside: a connection is open until
 * it idles out or the server stops (PhoenixConnection: open → closed), and the
 * endpoint refuses new sockets once it is closing (PhoenixSocketServer:
 * open → closing → closed).
 */
import test from 'ava';
import { connect } from 'node:net';
import type { Socket as NetSocket } from 'node:net';
import WebSocket from 'ws';
import { signWorkerToken } from '../../src/protocol/index.ts';
import { connectRaw } from './raw-socket.ts';
import { startServer, TEST_SECRET, waitFor } from './helpers.ts';

test('a socket that sends nothing is closed when it idles out; one that heartbeats stays open', async (t) => {
  const server = await startServer(t, { socketIdleTimeoutMs: 1_500 });
  const silent = await connectRaw(t, server, 'silent-worker');
  const beating = await connectRaw(t, server, 'beating-worker');
  let ref = 0;
  const beat = setInterval(() => beating.send([null, String((ref += 1)), 'phoenix', 'heartbeat', {}]), 100);
  t.teardown(() => clearInterval(beat));
  let deadline: NodeJS.Timeout | undefined;
  const code = await Promise.race([silent.closed, new Promise<string>((resolve) => (deadline = setTimeout(() => resolve('still open after 15 s'), 15_000)))]);
  clearTimeout(deadline);
  t.is(code, 1000);
  await waitFor(() => beating.frames.length >= 3 || null, { timeoutMs: 10_000, message: 'replies to the heartbeats' });
  t.is(beating.ws.readyState, WebSocket.OPEN, 'the socket that heartbeats is still open');
});

/** Opens the worker endpoint by hand and then never reads a frame: the server's close handshake cannot complete. */
async function stubbornSocket(port: number, token: string): Promise<{ socket: NetSocket; received: () => Buffer }> {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(
    `GET /worker/websocket?vsn=2.0.0&token=${token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  await waitFor(() => Buffer.concat(chunks).toString('latin1').includes('\r\n\r\n') || null, { timeoutMs: 5_000, message: 'the upgrade response' });
  return { socket, received: () => Buffer.concat(chunks) };
}

/** The code of the first close frame (opcode 8, unmasked from the server) after the HTTP response, or null. */
function closeCodeIn(received: Buffer): number | null {
  const start = received.indexOf('\r\n\r\n') + 4;
  for (let at = start; at + 3 < received.length; ) {
    const opcode = (received[at] ?? 0) & 0x0f;
    const length = (received[at + 1] ?? 0) & 0x7f;
    if (length > 125) return null; // the server sends nothing that long before closing here
    if (opcode === 0x8) return received.readUInt16BE(at + 2);
    at += 2 + length;
  }
  return null;
}

test('while the server stops, a new socket is refused with 503 and a connected one is told 1001, then cut', async (t) => {
  const server = await startServer(t);
  const stubborn = await stubbornSocket(server.port, await signWorkerToken(TEST_SECRET, 'stubborn-worker'));
  t.teardown(() => stubborn.socket.destroy());
  t.regex(stubborn.received().toString('latin1'), /^HTTP\/1\.1 101 /);
  const ended = new Promise<void>((resolve) => stubborn.socket.once('close', () => resolve()));

  const stopping = server.stop();
  // The stubborn socket holds the close open (until the server forces it after 2 s): the endpoint is closing.
  const closeCode = await waitFor(() => closeCodeIn(stubborn.received()), { timeoutMs: 5_000, message: 'a close frame' });
  t.is(closeCode, 1001);
  const status = await new Promise<number | undefined>((resolve) => {
    void signWorkerToken(TEST_SECRET, 'late-worker').then((token) => {
      const late = new WebSocket(`${server.workerUrl}/websocket?vsn=2.0.0&token=${token}`);
      late.on('unexpected-response', (_request, response) => {
        resolve(response.statusCode);
        late.terminate();
      });
      late.on('open', () => {
        resolve(101);
        late.terminate();
      });
      late.on('error', () => resolve(undefined));
    });
  });
  t.is(status, 503, 'a socket opened while the endpoint closes is refused');
  t.is(server.stop(), stopping, 'a second stop() returns the stop in flight');
  await stopping;
  await ended;
  t.is(server.state, 'stopped');
});
