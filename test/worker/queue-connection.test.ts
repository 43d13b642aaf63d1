/**
 * The worker's connection against the real server, through a proxy that can
 * hold the server's frames and cut the socket: what its state carries (the
 * claims in flight while joined, what the join offered while it reconnects).
 */
import test from 'ava';
import { signWorkerToken } from '../../src/protocol/index.ts';
import { ClaimInterruptedError } from '../../src/worker/channel-errors.ts';
import { QueueConnection } from '../../src/worker/queue-connection.ts';
import { queueJoinPayload } from '../../src/worker/worker-join.ts';
import { SlowServerProxy } from '../reliability/slow-server-proxy.ts';
import { TEST_SECRET, startServer, testLogger, waitFor } from '../server/helpers.ts';
import { testConfig } from './helpers.ts';

test('a claim in flight when the socket drops is rejected at once, the join features are kept while reconnecting, and the rejoin counts', async (t) => {
  const server = await startServer(t);
  const proxy = await SlowServerProxy.start(t, server.port);
  let joins = 0;
  let drops = 0;
  let onDrop: { state: string; features: unknown } | null = null;
  const connection = new QueueConnection({
    urls: [proxy.workerUrl],
    workerToken: await signWorkerToken(TEST_SECRET, 'connection-test'),
    workerVersion: '0.0.0',
    workerName: null,
    join: queueJoinPayload(testConfig({ lightningUrl: proxy.workerUrl }), []),
    // Far beyond the test's deadline: only the drop can settle the claim in time.
    claimTimeoutMs: 120_000,
    messageTimeoutMs: 5_000,
    reconnect: { minMs: 20, maxMs: 200 },
    logger: testLogger(),
    onJoined: () => joins++,
    onDisconnected: () => {
      drops++;
      onDrop = { state: connection.state, features: connection.features };
    },
    onWorkAvailable: () => {},
    onRunCancel: () => {},
    onRefused: () => {},
  });
  t.teardown(() => connection.close());
  t.is(connection.features.capabilities.size, 0, 'nothing is offered before a join');
  connection.connect();
  await waitFor(() => connection.state === 'joined', { message: 'the join' });
  const features = connection.features;
  t.true(features.capabilities.size > 0, 'lanes server offers its extensions');

  proxy.hold();
  let settled: unknown = null;
  void connection.claim({ demand: 1, queues: ['default'] }, new AbortController().signal).then(
    () => (settled = 'answered'),
    (error: unknown) => (settled = error),
  );
  await waitFor(() => proxy.sentEvents('claim').length === 1, { message: 'the claim to be sent' });
  proxy.dropAll();
  proxy.release();
  await waitFor(() => settled !== null, { message: 'the claim to be rejected on the drop' });
  t.true(settled instanceof ClaimInterruptedError, `the claim ended with ${String(settled)}`);
  t.is(drops, 1);
  t.deepEqual(onDrop, { state: 'disconnected', features }, 'what the join offered is kept while reconnecting');

  await waitFor(() => connection.state === 'joined' && joins === 2, { message: 'the rejoin' });
  t.is(connection.reconnects, 1);
  await connection.close();
  t.is(connection.state, 'closed');
});
