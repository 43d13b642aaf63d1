/**
 * `claim_plans`: a worker that declared it gets each claimed run's plan and
 * input in the claim reply (the same plan `fetch:plan` answers, the input's
 * JSON text `fetch:dataclip` sends), so it can start the run without three
 * round trips; one that did not (Lightning-compatible workers) gets `{id, token}`.
 */
import test from 'ava';
import { CAPABILITY_CLAIM_PLANS, CLAIM_DATACLIP_MAX_BYTES, WORKER_QUEUE_TOPIC } from '../../src/protocol/index.ts';
import type { QueueJoinReply } from '../../src/protocol/index.ts';
import { claim, connectWorker, join, joinQueue, joinRun, push, startServer, submitRun } from './helpers.ts';

test('a worker that declared claim_plans gets the plan and input in the claim reply, as fetch:plan and fetch:dataclip give them', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server);
  const joined = await join<QueueJoinReply>(socket, WORKER_QUEUE_TOPIC, { capacity: 2, queues: { 'manual>*': 2 }, capabilities: [CAPABILITY_CLAIM_PLANS] });
  t.is(joined.status, 'ok');
  t.true(joined.response.capabilities?.includes(CAPABILITY_CLAIM_PLANS), 'the server offers it');

  const small = await submitRun(server, { input: { data: { n: 1 } } });
  const [run] = await claim(joined.channel, ['manual', '*']);
  t.is(run?.id, small);
  const channel = await joinRun(socket, run!);
  const plan = await push(channel, 'fetch:plan');
  t.deepEqual(run?.plan, plan.response, 'the plan fetch:plan would have answered');
  const clip = await push<ArrayBuffer>(channel, 'fetch:dataclip', { id: run?.plan?.dataclip_id });
  t.is(run?.dataclip, new TextDecoder().decode(clip.response), 'the input fetch:dataclip would have sent');
  t.deepEqual(JSON.parse(run?.dataclip ?? 'null'), { data: { n: 1 } });

  // An input too large to ride in a claim reply is left out: the worker fetches it.
  const big = await submitRun(server, { input: { data: { blob: 'x'.repeat(CLAIM_DATACLIP_MAX_BYTES) } } });
  const [bigRun] = await claim(joined.channel, ['manual', '*']);
  t.is(bigRun?.id, big);
  t.is(bigRun?.plan?.id, big, 'the plan still comes');
  t.false(bigRun !== undefined && 'dataclip' in bigRun, 'the input does not');
});

test('a worker that did not declare claim_plans gets only ids and tokens', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server);
  const { channel } = await joinQueue(socket);
  await submitRun(server, { input: { data: { n: 1 } } });
  const [run] = await claim(channel, ['manual', '*']);
  t.deepEqual(Object.keys(run ?? {}).sort(), ['id', 'token']);
});
