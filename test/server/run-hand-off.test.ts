/**
 * The hand-off (run-hand-off.ts): on SQLite, a run submitted while a worker
 * holds a claim that could take it is stored already claimed by that claim,
 * in the insert's own transaction, by the claim's own rules. Real server on
 * port 0 (SQLite in memory), real phoenix client.
 */
import test from 'ava';
import type { Channel, Socket } from 'phoenix';
import { hashToken } from '../../src/server/queue-channel.ts';
import { CAPABILITY_CLAIM_PLANS, CAPABILITY_HELD_CLAIMS, CAPABILITY_WORK_QUEUES, CLAIM, CLAIM_RELEASE, WORKER_QUEUE_TOPIC } from '../../src/protocol/index.ts';
import type { ClaimReply, ClaimedRun, QueueJoinReply } from '../../src/protocol/index.ts';
import type { LanesServer } from '../../src/server/index.ts';
import { api, connectWorker, join, joinRun, push, simplePlan, startServer, testStoreKind } from './helpers.ts';
import type { PushResult } from './helpers.ts';

/** Joins `worker:queue` holding claims and taking plans in its claim replies. */
async function joinHolding(socket: Socket, lanes: Record<string, number>): Promise<Channel> {
  const capacity = Object.values(lanes).reduce((sum, slots) => sum + slots, 0);
  const result = await join<QueueJoinReply>(socket, WORKER_QUEUE_TOPIC, { capacity, queues: lanes, capabilities: [CAPABILITY_HELD_CLAIMS, CAPABILITY_WORK_QUEUES, CAPABILITY_CLAIM_PLANS] });
  if (result.status !== 'ok') throw new Error(`worker:queue join failed: ${JSON.stringify(result.response)}`);
  return result.channel;
}

/** A claim held for a minute: its reply once it comes. */
function holdClaim(channel: Channel, payload: Record<string, unknown>) {
  let reply: PushResult<ClaimReply> | undefined;
  const done = push<ClaimReply>(channel, CLAIM, { demand: 1, queues: ['manual', '*'], worker_name: 'held', hold_ms: 60_000, ...payload }, 120_000).then((result) => (reply = result));
  return { done, replied: () => reply !== undefined };
}

/** Resolves once every event sent before it on the channel was handled (an empty claim, held for no time, is answered after them). */
async function handled(channel: Channel): Promise<void> {
  const result = await push<ClaimReply>(channel, CLAIM, { demand: 1, queues: ['nothing_here'], worker_name: 'probe' });
  if (result.status !== 'ok' || result.response.runs.length !== 0) throw new Error(`probe claim: ${JSON.stringify(result)}`);
}

async function submit(server: LanesServer, body: Record<string, unknown>): Promise<{ id: string; state: string }> {
  const result = await api<{ id: string; state: string }>(server, 'POST', '/api/runs', { queue: 'manual', plan: simplePlan(), ...body });
  if (result.status !== 201) throw new Error(`submit failed: ${result.status} ${JSON.stringify(result.body)}`);
  return result.body;
}

const sqliteOnly = testStoreKind() === 'sqlite' ? test : test.skip;

sqliteOnly('a run submitted to a held claim is stored claimed by it, with its lease and token, and every answer agrees', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server, { workerId: 'holder' });
  const channel = await joinHolding(socket, { 'manual>*': 2 });
  const held = holdClaim(channel, { demand: 2 });
  await handled(channel);
  const before = Date.now();
  const submitted = await submit(server, { input: { data: { n: 7 } } });
  t.is(submitted.state, 'claimed', 'the HTTP answer says it was handed out');

  const reply = await held.done;
  t.is(reply.status, 'ok');
  const [run] = reply.response.runs as ClaimedRun[];
  t.is(reply.response.runs.length, 1);
  t.is(run?.id, submitted.id);
  t.is(run?.plan?.id, submitted.id, 'the plan rides in the reply');
  t.deepEqual(JSON.parse(run?.dataclip ?? 'null'), { data: { n: 7 } }, 'and the input, as stored');

  const stored = await server.store.getRun(submitted.id);
  t.is(stored?.state, 'claimed');
  t.is(stored?.attempts, 1);
  t.is(stored?.workerId, 'holder');
  t.is(stored?.workerName, 'held');
  t.is(stored?.leaseMode, 'timeout');
  t.true((stored?.leaseExpiresAt ?? 0) >= before + (stored?.runTimeoutMs ?? 0), 'leased for its timeout from the claim');
  t.is(stored?.tokenHash, hashToken(run?.token ?? ''), 'the token of the reply is the one bound to the attempt');
  const attempts = await server.store.getAttempts(submitted.id);
  t.deepEqual(attempts.map((attempt) => [attempt.attempt, attempt.state, attempt.workerId]), [[1, 'claimed', 'holder']]);

  const shown = await api<{ state: string; attempts: number; worker: string | null }>(server, 'GET', `/api/runs/${submitted.id}`);
  t.like(shown.body, { state: 'claimed', attempts: 1 });
  // The token opens the run's channel: the run is the worker's.
  const runChannel = await joinRun(socket, run!);
  t.deepEqual((await push(runChannel, 'fetch:plan')).response, run?.plan, 'the plan of the reply is the plan fetch:plan gives');
  const metrics = await api<string>(server, 'GET', '/metrics');
  t.regex(metrics.body, /lanes_runs_claimed_total\{queue="manual"\} 1\b/);
});

sqliteOnly('a held claim that cannot take the run leaves it queued, and takes nothing out of its order', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server);
  const channel = await joinHolding(socket, { 'manual>*': 1 });
  // 100 MB free, runs count 200 MB unless their plan says less.
  const held = holdClaim(channel, { max_run_memory_mb: 100, lane_memory_mb: 1000, default_run_memory_mb: 200 });
  await handled(channel);
  const big = await submit(server, {});
  t.is(big.state, 'available', 'it does not fit the claim: not handed out');
  t.is((await api<{ state: string }>(server, 'GET', `/api/runs/${big.id}`)).body.state, 'available');
  // A small run fits, but the big one is first in the claim's order: the claim takes nothing (claim-memory.ts).
  const small = await submit(server, { plan: { ...simplePlan(), options: { run_memory_limit_mb: 50 } } });
  t.is(small.state, 'available', 'not handed out past the run before it');
  t.is((await api<{ state: string }>(server, 'GET', `/api/runs/${small.id}`)).body.state, 'available');
  await handled(channel);
  t.false(held.replied(), 'the claim waits on');
  t.is((await push(channel, CLAIM_RELEASE, {})).status, 'ok');
  t.deepEqual((await held.done).response.runs, [], 'and is answered empty when released');
});

sqliteOnly('a strict claim of another queue is not handed the run', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server);
  const channel = await joinHolding(socket, { fast_lane: 1 });
  const held = holdClaim(channel, { queues: ['fast_lane'] });
  await handled(channel);
  const run = await submit(server, { queue: 'manual' });
  t.is(run.state, 'available');
  const fast = await submit(server, { queue: 'fast_lane' });
  t.is(fast.state, 'claimed');
  t.deepEqual((await held.done).response.runs.map((claimed) => claimed.id), [fast.id]);
});

sqliteOnly('a run of a suspended queue is not handed out; one in another queue is, past a run no held claim may take', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server);
  const channel = await joinHolding(socket, { 'manual>*': 1 });
  t.is((await api(server, 'POST', '/api/queues/manual/suspend')).status, 200);
  const held = holdClaim(channel, {});
  await handled(channel);
  const paused = await submit(server, { queue: 'manual' });
  t.is(paused.state, 'available', 'its queue is suspended');
  await handled(channel);
  t.false(held.replied());
  // The suspended run is older and still available: the run of `default` is handed out by the claim's own order.
  const other = await submit(server, { queue: 'default' });
  t.is(other.state, 'claimed');
  t.deepEqual((await held.done).response.runs.map((claimed) => claimed.id), [other.id]);
  t.is((await api<{ state: string }>(server, 'GET', `/api/runs/${paused.id}`)).body.state, 'available');
});
