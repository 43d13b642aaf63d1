/**
 * The `run_cancel` extension, server side: cancelling a run through the API
 * pushes `run:cancel` to the worker holding it when that worker declared the
 * extension, and to nobody otherwise (Lightning's contract). The worker's
 * `run:complete` with reason `cancel` is then accepted, not refused.
 */
import test from 'ava';
import { WORKER_QUEUE_TOPIC } from '../../src/protocol/index.ts';
import type { QueueJoinReply } from '../../src/protocol/index.ts';
import { api, claim, connectWorker, join, joinRun, nextPush, push, startServer, submitRun } from './helpers.ts';

async function holdingWorker(t: Parameters<typeof startServer>[0], server: Awaited<ReturnType<typeof startServer>>, capabilities: string[] | undefined) {
  const runId = await submitRun(server);
  const socket = await connectWorker(t, server, { workerId: `worker-${capabilities ? 'cancels' : 'plain'}` });
  const payload: Record<string, unknown> = { capacity: 1, queues: { '*': 1 } };
  if (capabilities) payload['capabilities'] = capabilities;
  const joined = await join<QueueJoinReply>(socket, WORKER_QUEUE_TOPIC, payload);
  if (joined.status !== 'ok') throw new Error('join failed');
  const [claimed] = await claim(joined.channel, ['*']);
  if (!claimed) throw new Error('nothing claimed');
  const run = await joinRun(socket, claimed);
  return { runId, queue: joined.channel, run, reply: joined.response };
}

test('a cancelled run is pushed to the worker holding it when it declared run_cancel', async (t) => {
  const server = await startServer(t);
  const { runId, queue, run, reply } = await holdingWorker(t, server, ['run_cancel']);
  t.true(reply.capabilities?.includes('run_cancel'), 'the server offers the extension');
  t.is((await push(run, 'run:start', { timestamp: String(Date.now() * 1000) })).status, 'ok');
  const pushed = nextPush<{ run_id: string }>(queue, 'run:cancel');
  const cancelled = await api(server, 'POST', `/api/runs/${runId}/cancel`);
  t.is(cancelled.status, 200);
  t.deepEqual(await pushed, { run_id: runId });
  const complete = await push(run, 'run:complete', { reason: 'cancel', error_type: 'CancelError', error_message: 'the run was cancelled', timestamp: String(Date.now() * 1000) });
  t.is(complete.status, 'ok', JSON.stringify(complete.response));
  const after = await push(run, 'run:complete', { reason: 'success', error_type: null, error_message: null, timestamp: String(Date.now() * 1000) });
  t.is(after.status, 'error', 'another outcome of a cancelled run is still refused');
  const { body } = await api<{ state: string }>(server, 'GET', `/api/runs/${runId}`);
  t.is(body.state, 'cancelled');
});

test('a worker that did not declare run_cancel gets no push', async (t) => {
  const server = await startServer(t);
  const { runId, queue } = await holdingWorker(t, server, undefined);
  let pushes = 0;
  queue.on('run:cancel', () => {
    pushes += 1;
  });
  t.is((await api(server, 'POST', `/api/runs/${runId}/cancel`)).status, 200);
  // A push is written before the API answers; a claim's reply comes after it on the same socket.
  await claim(queue, ['*']);
  t.is(pushes, 0);
});
