/**
 * Issue 12, item 3: a worker that cannot work says why, at warn, with the
 * next retry delay, and does not flood its log; a refusal that retrying
 * cannot fix ends it with exit 2 and the server's reason. Real `lanes worker`
 * processes against the real server (or nothing at all).
 */
import test from 'ava';
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { startServer, waitFor } from '../server/helpers.ts';
import { prepareAdaptorRepo, spawnWorker } from './process-cluster.ts';
import { SlowServerProxy } from './slow-server-proxy.ts';
import type { PhoenixFrame } from './slow-server-proxy.ts';
import type { LogLine } from './process-cluster.ts';

const WARN = 40;
/** A worker forks and warms its engine before it connects: on a loaded machine that alone can take half a minute. */
const STARTUP_MS = 90_000;

function warnings(lines: readonly LogLine[], msg: string): LogLine[] {
  return lines.filter((line) => line.msg === msg && line['level'] === WARN);
}

test('a wrong secret: warn "the server refused the worker token: check WORKER_SECRET" with the retry delay, once for many refusals', async (t) => {
  const server = await startServer(t);
  // A counting TCP relay in front of the server: every reconnect attempt is one connection.
  let connections = 0;
  // Both ends of every relayed connection, destroyed at teardown: closing the relay only stops it
  // accepting, and a connection the worker opened as it was killed could outlive the file's tests.
  const open = new Set<Socket>();
  const track = (socket: Socket): Socket => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    return socket;
  };
  const relay = createServer((socket) => {
    connections += 1;
    const upstream = track(connect(server.port, '127.0.0.1'));
    track(socket).pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of open) socket.destroy();
    relay.close();
  });
  const relayPort = (relay.address() as AddressInfo).port;
  const repoDir = await prepareAdaptorRepo(t);
  const worker = spawnWorker(t, { lightningUrl: `ws://127.0.0.1:${relayPort}/worker`, workloops: 'manual>*:1', repoDir, extraArgs: ['--secret', 'not-the-server-secret'] });
  const line = await worker.waitForLog('the server refused the worker token: check WORKER_SECRET', undefined, STARTUP_MS);
  t.is(line['level'], WARN);
  t.regex(String(line['cause']), /401/);
  t.true(typeof line['retryInMs'] === 'number' && line['retryInMs'] > 0, `retryInMs: ${String(line['retryInMs'])}`);
  // Phoenix reconnects from 250 ms on: wait for several more refusals; they are not logged again within 30 s.
  await waitFor(() => connections >= 4, { timeoutMs: 30_000, message: 'four connection attempts' });
  t.is(warnings(worker.lines, 'the server refused the worker token: check WORKER_SECRET').length, 1, 'the warning is rate-limited');
  t.falsy(worker.lines.find((l) => l.msg === 'joined worker:queue'));
});

test('an unreachable server: warn "cannot reach the server; retrying" naming the cause', async (t) => {
  // A port nothing listens on: bind one, then close it.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const repoDir = await prepareAdaptorRepo(t);
  const worker = spawnWorker(t, { lightningUrl: `ws://127.0.0.1:${port}/worker`, workloops: 'manual>*:1', repoDir });
  const line = await worker.waitForLog('cannot reach the server; retrying', undefined, STARTUP_MS);
  t.is(line['level'], WARN);
  t.regex(String(line['cause']), /ECONNREFUSED/);
  t.true(typeof line['retryInMs'] === 'number');
});

test('a wrong path: warn that there is no worker endpoint at this URL', async (t) => {
  const server = await startServer(t);
  const repoDir = await prepareAdaptorRepo(t);
  const worker = spawnWorker(t, { lightningUrl: server.workerUrl.replace(/\/worker$/, '/wrong'), workloops: 'manual>*:1', repoDir });
  const line = await worker.waitForLog('no worker endpoint at this URL: check WORKER_LIGHTNING_SERVICE_URL (it ends in /worker)', undefined, STARTUP_MS);
  t.regex(String(line['cause']), /404/);
});

test('lanes the server refuses: exit 2 with the server\'s reason in one line, no retry loop', async (t) => {
  // The worker and our server share their limits (64 lanes), so play a server with a smaller one
  // (another version, another implementation): its join reply refuses the layout.
  const server = await startServer(t);
  const proxy = await SlowServerProxy.start(t, server.port);
  proxy.rewrite = (frame: PhoenixFrame): PhoenixFrame => {
    const [joinRef, ref, topic, event] = frame;
    if (topic !== 'worker:queue' || event !== 'phx_reply' || joinRef !== ref) return frame;
    return [joinRef, ref, topic, event, { status: 'error', response: { reason: 'invalid_payload', errors: { queues: ['must declare at most 2 lanes'] } } }];
  };
  const repoDir = await prepareAdaptorRepo(t);
  const worker = spawnWorker(t, { lightningUrl: `ws://127.0.0.1:${proxy.port}/worker`, workloops: 'a:1 b:1 c:1', repoDir });
  const exit = await worker.exited;
  t.deepEqual(exit, { code: 2, signal: null });
  t.is(worker.stderr().trim(), 'lanes worker: the server refused the worker\'s lanes: invalid_payload: {"queues":["must declare at most 2 lanes"]}');
  t.is(proxy.sentEvents('phx_join', 'worker:queue').length, 1, 'joined once: no retry loop');
});

test('a join the server refuses for now: warn "worker:queue join refused; retrying" with the reason and the retry delay, and the worker retries', async (t) => {
  const server = await startServer(t);
  const proxy = await SlowServerProxy.start(t, server.port);
  proxy.rewrite = (frame: PhoenixFrame): PhoenixFrame => {
    const [joinRef, ref, topic, event] = frame;
    if (topic !== 'worker:queue' || event !== 'phx_reply' || joinRef !== ref) return frame;
    return [joinRef, ref, topic, event, { status: 'error', response: { reason: 'unavailable' } }];
  };
  const repoDir = await prepareAdaptorRepo(t);
  const worker = spawnWorker(t, { lightningUrl: `ws://127.0.0.1:${proxy.port}/worker`, workloops: 'manual>*:1', repoDir });
  const line = await worker.waitForLog('worker:queue join refused; retrying', undefined, STARTUP_MS);
  t.is(line['level'], WARN);
  t.is(line['reason'], 'unavailable');
  t.true(typeof line['retryInMs'] === 'number' && line['retryInMs'] > 0, `retryInMs: ${String(line['retryInMs'])}`);
  // It keeps trying (a refusal retrying may fix), and says so once.
  await waitFor(() => proxy.sentEvents('phx_join', 'worker:queue').length >= 3, { timeoutMs: 30_000, message: 'three joins' });
  t.is(warnings(worker.lines, 'worker:queue join refused; retrying').length, 1);
  t.is(worker.child.exitCode, null, 'still running');
});
