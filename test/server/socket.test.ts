import test from 'ava';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { signWorkerToken, WORKER_QUEUE_TOPIC } from '../../src/protocol/index.ts';
import { connectWorker, join, joinQueue, push, startServer, TEST_SECRET } from './helpers.ts';

function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('open', () => {
      resolve(101);
      ws.close();
    });
    ws.on('error', (error) => reject(error));
  });
}

test('the upgrade is refused with 401 without a token, with a bad one, or with the wrong issuer', async (t) => {
  const server = await startServer(t);
  const base = `${server.workerUrl}/websocket?vsn=2.0.0`;
  t.is(await upgradeStatus(base), 401);
  t.is(await upgradeStatus(`${base}&token=${await signWorkerToken('other-secret', 'w')}`), 401);
  t.is(await upgradeStatus(`${base}&token=not.a.jwt`), 401);
  const wrongIssuer = await new SignJWT({ worker_id: 'w' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setIssuer('someone-else')
    .sign(new TextEncoder().encode(TEST_SECRET));
  t.is(await upgradeStatus(`${base}&token=${wrongIssuer}`), 401);
  t.is(await upgradeStatus(`${base}&token=${await signWorkerToken(TEST_SECRET, 'w')}`), 101);
  t.is(await upgradeStatus(`${server.url}/elsewhere/websocket`), 404);
});

test('a worker with a good token connects, joins worker:queue and gets the capabilities', async (t) => {
  const server = await startServer(t, { leaseMs: 1234, heartbeatIntervalMs: 321 });
  const socket = await connectWorker(t, server);
  const { reply } = await joinQueue(socket, { fast_lane: 1, 'manual>*': 4 });
  t.deepEqual(reply, { capabilities: ['run_heartbeat', 'idempotent_events', 'run_cancel', 'memory_claims', 'claim_plans', 'work_queues', 'held_claims'], heartbeat_interval_ms: 321, lease_ms: 1234 });
});

test('heartbeats are answered; an event on a topic not joined and a frame with a ref but bad fields get error replies, not a crash', async (t) => {
  const server = await startServer(t);
  const ws = new WebSocket(`${server.workerUrl}/websocket?vsn=2.0.0&token=${await signWorkerToken(TEST_SECRET, 'w')}`);
  t.teardown(() => ws.terminate());
  await new Promise((resolve) => ws.once('open', resolve));
  const replies: unknown[] = [];
  ws.on('message', (data) => replies.push(JSON.parse(String(data))));
  ws.send(JSON.stringify([null, '1', 'phoenix', 'heartbeat', {}]));
  ws.send(JSON.stringify(['9', '2', 'run:nope', 'run:start', {}]));
  ws.send('this is not json');
  ws.send(JSON.stringify({ not: 'an array' }));
  ws.send(JSON.stringify([null, '3', 42, 'x', {}]));
  ws.send(JSON.stringify([null, '4', 'phoenix', 'heartbeat', {}]));
  const deadline = Date.now() + 5000;
  while (replies.length < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.deepEqual(replies, [
    [null, '1', 'phoenix', 'phx_reply', { status: 'ok', response: {} }],
    ['9', '2', 'run:nope', 'phx_reply', { status: 'error', response: { reason: 'unmatched topic' } }],
    // A ref but no string topic: answered on `phoenix` so the sender is not left waiting.
    [null, '3', 'phoenix', 'phx_reply', { status: 'error', response: { reason: 'frame fields have the wrong types' } }],
    [null, '4', 'phoenix', 'phx_reply', { status: 'ok', response: {} }],
  ]);
  t.is(ws.readyState, WebSocket.OPEN);
});

test('join errors: unknown topics, invalid queue join payloads and bad run tokens', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server);
  t.deepEqual((await join(socket, 'room:lobby')).response, { reason: 'unmatched topic' });
  const badQueue = await join(socket, WORKER_QUEUE_TOPIC, { capacity: -1, queues: { '*>manual': 2 } });
  t.is(badQueue.status, 'error');
  t.is((badQueue.response as { reason: string }).reason, 'invalid_payload');
  t.deepEqual((await join(socket, 'run:123', { token: 'nope' })).response, { reason: 'unauthorized' });
});

test('a claim with a bad payload gets a field error reply and the channel lives on', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server);
  const { channel } = await joinQueue(socket);
  const bad = await push(channel, 'claim', { demand: 0, queues: ['*', 'manual'] });
  t.is(bad.status, 'error');
  t.truthy((bad.response as Record<string, unknown>)['demand']);
  t.truthy((bad.response as Record<string, unknown>)['queues']);
  const good = await push(channel, 'claim', { demand: 1, worker_name: null, queues: ['manual', '*'] });
  t.deepEqual(good, { status: 'ok', response: { runs: [] } });
});

test('stop closes sockets and the database, and repeated calls share one promise', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server);
  await joinQueue(socket);
  const closed = new Promise<void>((resolve) => socket.onClose(() => resolve()));
  const first = server.stop();
  t.is(server.stop(), first);
  await first;
  await closed;
  t.is(server.state, 'stopped');
  t.false(server.store.isOpen);
});

test('a binary push from the phoenix client is answered with an error and the channel lives on', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server);
  const { channel } = await joinQueue(socket);
  const binary = await push(channel, 'claim', new Uint8Array([1, 2, 3]).buffer);
  t.deepEqual(binary, { status: 'error', response: { reason: 'binary payloads are not accepted' } });
  t.deepEqual(await push(channel, 'claim', { demand: 1, worker_name: null }), { status: 'ok', response: { runs: [] } });
});
