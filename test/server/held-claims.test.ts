/**
 * `held_claims`: a claim that finds nothing and asks for `hold_ms` waits at
 * the server and is answered the moment a run it may take is queued; with
 * no run, empty when its time is up or on `claim:release`. Real server on
 * port 0 (SQLite, or PostgreSQL with LANES_TEST_STORE=postgres), real phoenix
 * client.
 */
import test from 'ava';
import type { Channel, Socket } from 'phoenix';
import { CAPABILITY_HELD_CLAIMS, CAPABILITY_WORK_QUEUES, CLAIM, CLAIM_RELEASE, WORK_AVAILABLE, WORKER_QUEUE_TOPIC } from '../../src/protocol/index.ts';
import type { ClaimReply, QueueJoinReply, WorkAvailablePayload } from '../../src/protocol/index.ts';
import { FakeExecutor, startWorker, testConfig } from '../worker/helpers.ts';
import { HeldClaims } from '../../src/server/held-claims.ts';
import type { ClaimTry } from '../../src/server/held-claims.ts';
import { api, connectWorker, join, push, startServer, submitRun, testLogger, waitFor } from './helpers.ts';
import type { PushResult } from './helpers.ts';

/** Joins `worker:queue` declaring `held_claims` and `work_queues`; records the pushes. */
async function joinHolding(socket: Socket, lanes: Record<string, number>, declare = true): Promise<{ channel: Channel; reply: QueueJoinReply; pushes: WorkAvailablePayload[] }> {
  const capacity = Object.values(lanes).reduce((sum, slots) => sum + slots, 0);
  const capabilities = declare ? [CAPABILITY_HELD_CLAIMS, CAPABILITY_WORK_QUEUES] : [CAPABILITY_WORK_QUEUES];
  const result = await join<QueueJoinReply>(socket, WORKER_QUEUE_TOPIC, { capacity, queues: lanes, capabilities });
  if (result.status !== 'ok') throw new Error(`worker:queue join failed: ${JSON.stringify(result.response)}`);
  const pushes: WorkAvailablePayload[] = [];
  result.channel.on(WORK_AVAILABLE, (body: WorkAvailablePayload) => void pushes.push(body));
  return { channel: result.channel, reply: result.response, pushes };
}

/** A claim in flight: its reply once it comes (`replied` says whether it has). */
function heldClaim(channel: Channel, queues: string[], holdMs: number, demand = 1) {
  let reply: PushResult<ClaimReply> | undefined;
  const done = push<ClaimReply>(channel, CLAIM, { demand, queues, worker_name: 'held', hold_ms: holdMs }, 120_000).then((result) => (reply = result));
  return { done, replied: () => reply !== undefined };
}

/**
 * Resolves once the server has handled every event sent before it on this
 * channel: events of one topic are handled in order, so when a claim sent
 * after them is answered (an empty one, held for no time), they were handled.
 */
async function handled(channel: Channel): Promise<void> {
  const result = await push<ClaimReply>(channel, CLAIM, { demand: 1, queues: ['nothing_here'], worker_name: 'probe' });
  if (result.status !== 'ok' || result.response.runs.length !== 0) throw new Error(`probe claim: ${JSON.stringify(result)}`);
}

test('a held claim is answered with a run the moment one is submitted', async (t) => {
  const server = await startServer(t);
  const worker = await joinHolding(await connectWorker(t, server), { 'manual>*': 1 });
  t.true(worker.reply.capabilities?.includes(CAPABILITY_HELD_CLAIMS), 'the server offers the extension');
  const held = heldClaim(worker.channel, ['manual', '*'], 60_000);
  await handled(worker.channel);
  t.false(held.replied(), 'nothing was queued: the claim waits');
  const id = await submitRun(server, { queue: 'manual' });
  const result = await held.done;
  t.is(result.status, 'ok');
  t.deepEqual(result.response.runs.map((run) => run.id), [id]);
  const { body } = await api<{ state: string }>(server, 'GET', `/api/runs/${id}`);
  t.is(body.state, 'claimed');
  t.deepEqual(worker.pushes, [], 'its only lane was waiting in the claim: no push was needed');
});

test('a held claim is answered empty when its time is up', async (t) => {
  const server = await startServer(t);
  const worker = await joinHolding(await connectWorker(t, server), { 'manual>*': 1 });
  const sentAt = performance.now();
  const result = await heldClaim(worker.channel, ['manual', '*'], 300).done;
  t.is(result.status, 'ok');
  t.deepEqual(result.response.runs, []);
  t.true(performance.now() - sentAt >= 290, 'it was held for its time');
});

test('claim:release answers every held claim at once, empty; the channel serves other events while claims are held', async (t) => {
  const server = await startServer(t);
  const worker = await joinHolding(await connectWorker(t, server), { fast_lane: 1, 'manual>*': 2 });
  const first = heldClaim(worker.channel, ['fast_lane'], 60_000);
  const second = heldClaim(worker.channel, ['manual', '*'], 60_000, 2);
  await handled(worker.channel);
  t.false(first.replied() || second.replied());
  const releasedAt = performance.now();
  const released = await push(worker.channel, CLAIM_RELEASE, {});
  t.is(released.status, 'ok');
  const replies = await Promise.all([first.done, second.done]);
  t.true(performance.now() - releasedAt < 30_000, 'answered by the release, not at the end of their minute');
  t.deepEqual(replies.map((reply) => [reply.status, reply.response.runs.length]), [['ok', 0], ['ok', 0]]);
  // Nothing is held now: a run submitted next is not handed to anyone, and waits for a claim.
  const id = await submitRun(server, { queue: 'manual' });
  await waitFor(() => worker.pushes.length > 0, { message: 'the push that takes the place of the released claims' });
  const { body } = await api<{ state: string }>(server, 'GET', `/api/runs/${id}`);
  t.is(body.state, 'available', 'not handed to anyone');
});

test('the held claim of a chain that names the queue is served before one that takes it through *', async (t) => {
  const server = await startServer(t);
  const worker = await joinHolding(await connectWorker(t, server), { 'manual>*': 1, fast_lane: 1 });
  // The wildcard lane's claim is the older one: the order is still the pinned chain's first.
  const wildcard = heldClaim(worker.channel, ['manual', '*'], 60_000);
  const pinned = heldClaim(worker.channel, ['fast_lane'], 60_000);
  await handled(worker.channel);
  const id = await submitRun(server, { queue: 'fast_lane' });
  t.deepEqual((await pinned.done).response.runs.map((run) => run.id), [id]);
  await handled(worker.channel);
  t.false(wildcard.replied(), 'the wildcard claim found nothing left and still waits');
  t.deepEqual(worker.pushes, [], 'both lanes that could take it were waiting in claims');
  // A second run goes to the claim still held.
  const next = await submitRun(server, { queue: 'fast_lane' });
  t.deepEqual((await wildcard.done).response.runs.map((run) => run.id), [next]);
});

test('a lane not waiting in a held claim still gets work-available', async (t) => {
  const server = await startServer(t);
  const worker = await joinHolding(await connectWorker(t, server), { fast_lane: 1, 'manual>*': 1 });
  const wildcard = heldClaim(worker.channel, ['manual', '*'], 60_000);
  await handled(worker.channel);
  // The fast lane holds no claim: it must hear of fast_lane work, even though the wildcard claim takes this run.
  const id = await submitRun(server, { queue: 'fast_lane' });
  await waitFor(() => worker.pushes.length === 1, { message: 'the push for the lane not holding a claim' });
  t.deepEqual(worker.pushes[0], { queues: ['fast_lane'] });
  t.deepEqual((await wildcard.done).response.runs.map((run) => run.id), [id]);
});

test('idle workers take turns: held claims of each worker are tried first in turn, not always the first worker\'s', async (t) => {
  const server = await startServer(t);
  const first = await joinHolding(await connectWorker(t, server, { workerId: 'first' }), { 'manual>*': 2 });
  const second = await joinHolding(await connectWorker(t, server, { workerId: 'second' }), { 'manual>*': 2 });
  // Two lanes' claims held by each worker: the first worker could take both runs.
  const claims = [heldClaim(first.channel, ['manual', '*'], 60_000), heldClaim(first.channel, ['manual', '*'], 60_000), heldClaim(second.channel, ['manual', '*'], 60_000), heldClaim(second.channel, ['manual', '*'], 60_000)];
  await Promise.all([handled(first.channel), handled(second.channel)]);
  const answered = () => claims.map((claim, index) => (claim.replied() ? index : -1)).filter((index) => index >= 0);
  await submitRun(server, { queue: 'manual' });
  await waitFor(() => answered().length === 1, { message: 'one held claim to get the first run' });
  await submitRun(server, { queue: 'manual' });
  await waitFor(() => answered().length === 2, { message: 'one held claim to get the second run' });
  const byWorker = answered().map((index) => (index < 2 ? 'first' : 'second'));
  t.deepEqual([...byWorker].sort(), ['first', 'second'], 'one run each');
  await Promise.all([push(first.channel, CLAIM_RELEASE, {}), push(second.channel, CLAIM_RELEASE, {})]);
  await Promise.all(claims.map((claim) => claim.done));
});

test('hold_ms is ignored without the extension: from a worker that did not declare it, or at a server that does not offer it', async (t) => {
  const server = await startServer(t);
  const plain = await joinHolding(await connectWorker(t, server, { workerId: 'plain' }), { 'manual>*': 1 }, false);
  const fromPlain = await heldClaim(plain.channel, ['manual', '*'], 60_000).done;
  t.deepEqual([fromPlain.status, fromPlain.response.runs], ['ok', []], 'answered at once, empty');

  const declining = await startServer(t, { holdClaims: false });
  const worker = await joinHolding(await connectWorker(t, declining, { workerId: 'declined' }), { 'manual>*': 1 });
  t.false(worker.reply.capabilities?.includes(CAPABILITY_HELD_CLAIMS), 'not offered');
  const fromWorker = await heldClaim(worker.channel, ['manual', '*'], 60_000).done;
  t.deepEqual([fromWorker.status, fromWorker.response.runs], ['ok', []]);
});

test('hold_ms beyond the bound is refused, naming the field', async (t) => {
  const server = await startServer(t);
  const worker = await joinHolding(await connectWorker(t, server), { 'manual>*': 1 });
  const result = await push<{ hold_ms?: string[] }>(worker.channel, CLAIM, { demand: 1, queues: ['manual', '*'], hold_ms: 600_000 });
  t.is(result.status, 'error');
  t.truthy(result.response.hold_ms);
});

test('a worker holds its lanes\' claims at the server, runs what comes at once, and stops without waiting out the holds', async (t) => {
  const server = await startServer(t);
  const executor = new FakeExecutor();
  // A claim timeout of two minutes: each claim is held for a minute.
  const worker = await startWorker(t, { executor, config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'fast_lane:1 manual>*:2', claimTimeoutMs: 120_000 }) });
  await waitFor(() => worker.lanes.every((lane) => lane.state === 'claiming'), { message: 'every lane to wait in a held claim' });
  const ids = [await submitRun(server, { queue: 'fast_lane' }), await submitRun(server, { queue: 'manual' })];
  await waitFor(
    async () => {
      const states = await Promise.all(ids.map(async (id) => (await api<{ state: string }>(server, 'GET', `/api/runs/${id}`)).body.state));
      return states.every((state) => state === 'success');
    },
    { message: 'both runs to finish' },
  );
  await waitFor(() => worker.lanes.every((lane) => lane.state === 'claiming'), { message: 'every lane to wait in a held claim again' });
  const stoppingAt = performance.now();
  await worker.stop();
  t.true(performance.now() - stoppingAt < 30_000, 'the held claims were released, not waited out (a minute each)');
});

test('a run queued while a claim\'s first try is reading the queues is not missed: that claim tries again at once', async (t) => {
  // The order the live server cannot be made to show on demand: the first try is held open while work is queued.
  const held = new HeldClaims<never>(testLogger());
  const firstTry = Promise.withResolvers<ClaimTry>();
  let retries = 0;
  const claimed = held.claim(['manual', '*'], 60_000, () => firstTry.promise, async () => {
    retries += 1;
    return { reply: { runs: [{ id: 'queued-during-the-try', token: 't' }] }, drained: true };
  });
  t.is(held.count('manual'), 1, 'held from before its first try');
  t.is(held.count('manual'), 1);
  t.false(await held.serve('manual'), 'work queued during the first try reaches the claim, which is still trying');
  t.is(retries, 0, 'not tried twice at once');
  firstTry.resolve({ reply: { runs: [] }, drained: true });
  const outcome = await claimed;
  if (!('later' in outcome)) return t.fail(`the claim found nothing at first, so it waits: ${JSON.stringify(outcome)}`);
  t.deepEqual((await outcome.later).runs.map((run) => run.id), ['queued-during-the-try']);
  t.is(retries, 1);
  t.is(held.size, 0);
});

test('a claim\'s first try that finds runs, or fails, leaves nothing held', async (t) => {
  const held = new HeldClaims<never>(testLogger());
  const never = async (): Promise<ClaimTry> => {
    throw new Error('not tried again');
  };
  const found = await held.claim(['manual'], 60_000, async () => ({ reply: { runs: [{ id: 'r1', token: 't' }] }, drained: false }), never);
  t.deepEqual(found, { now: { runs: [{ id: 'r1', token: 't' }] } });
  await t.throwsAsync(
    held.claim(['manual'], 60_000, async () => {
      throw new Error('store down');
    }, never),
    { message: 'store down' },
  );
  t.is(held.size, 0);
  t.is(held.count('manual'), 0);
});

test('claims sent while runs are being submitted get them at once, never after their hold', async (t) => {
  const server = await startServer(t);
  const worker = await joinHolding(await connectWorker(t, server), { 'manual>*': 1 });
  // Each claim is sent with a submission a little before, with or after it, so that some
  // submissions are stored while the claim's first try reads the queues.
  for (let round = 0; round < 60; round += 1) {
    const lead = round % 3;
    const submitted = new Promise<string>((resolve, reject) => {
      setTimeout(() => void submitRun(server, { queue: 'manual' }).then(resolve, reject), lead);
    });
    const claim = heldClaim(worker.channel, ['manual', '*'], 60_000);
    const id = await submitted;
    let timer: NodeJS.Timeout | undefined;
    const reply = await Promise.race([claim.done, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), 10_000)))]);
    clearTimeout(timer);
    if (reply === undefined) return t.fail(`round ${round}: run ${id} waited for the claim's minute-long hold`);
    t.deepEqual(reply.response.runs.map((run) => run.id), [id], `round ${round}`);
  }
});
