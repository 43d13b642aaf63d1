/**
 * Memory-aware lanes against the real server (docs/memory.md): with a
 * ceiling each lane owns its share of memory, claims only while it has a
 * free slot and free memory, and the server hands out only runs that fit.
 */
import test from 'ava';
import type { LanesServer } from '../../src/server/index.ts';
import { CHILD_MEMORY_MB, WORKER_MEMORY_MB } from '../../src/lanes/memory-plan.ts';
import { CLAIM, WORKER_QUEUE_TOPIC } from '../../src/protocol/events.ts';
import type { ClaimPayload } from '../../src/protocol/messages.ts';
import { api, simplePlan, startServer, submitRun, waitFor } from '../server/helpers.ts';
import { SlowServerProxy } from '../reliability/slow-server-proxy.ts';
import { FakeExecutor, startWorker, testConfig } from './helpers.ts';

/** A plan whose job waits for `release()`, declaring `memoryMb` in its options. */
function holdPlan(memoryMb?: number): Record<string, unknown> {
  const plan = simplePlan('hold');
  return memoryMb === undefined ? plan : { ...plan, options: { run_memory_limit_mb: memoryMb } };
}

/** The ceiling that leaves exactly `forRuns` MB for runs with this many slots (no spare children). */
function ceilingFor(slots: number, forRuns: number): number {
  return WORKER_MEMORY_MB + slots * CHILD_MEMORY_MB + forRuns;
}

async function stateOf(server: LanesServer, id: string): Promise<string> {
  const { body } = await api<{ state: string }>(server, 'GET', `/api/runs/${id}`);
  return body.state;
}

/** Releases every held run and waits until each run the worker took has finished, so nothing is left in flight. */
async function finishAll(server: LanesServer, executor: FakeExecutor): Promise<void> {
  const ids = executor.requests.map((request) => request.runId);
  await waitFor(
    async () => {
      executor.releaseAll();
      const states = await Promise.all(ids.map((id) => stateOf(server, id)));
      return states.every((state) => state === 'success');
    },
    { message: 'every run to finish' },
  );
}

/** Asserts the run stays `available` for a while (a claim that should not happen has time to happen). */
async function staysAvailable(server: LanesServer, id: string, windowMs = 600): Promise<boolean> {
  const until = Date.now() + windowMs;
  while (Date.now() < until) {
    if ((await stateOf(server, id)) !== 'available') return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

test('a lane with a free slot but too little free memory does not claim', async (t) => {
  const server = await startServer(t);
  const executor = new FakeExecutor();
  const worker = await startWorker(t, {
    executor,
    config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'manual>*:2', maxMemoryMb: ceilingFor(2, 512), runMemoryLimitMb: 256 }),
  });
  const big = await submitRun(server, { plan: holdPlan(500) });
  await waitFor(() => executor.heldRunIds.includes(big), { message: 'the big run to be executing' });
  const lane = worker.lanes[0];
  t.is(lane?.memoryMb, 512);
  t.is(lane?.memoryReservedMb, 500, 'the run reserved what its plan declared');
  await waitFor(() => worker.lanes[0]?.state === 'full', { message: 'the lane to wait: one slot free, 12 MB free' });
  const metricsBefore = await claimsSent(worker.healthPort);

  const small = await submitRun(server, { plan: holdPlan(64) });
  t.true(await staysAvailable(server, small), 'the small run waits while the lane has no memory for it');
  t.is(worker.lanes[0]?.active, 1);
  t.is(await claimsSent(worker.healthPort), metricsBefore, 'no claim was sent');

  executor.release(big);
  await waitFor(() => executor.heldRunIds.includes(small), { message: 'the small run to start once memory is free' });
  t.is(executor.requests.find((request) => request.runId === small)?.limits.memoryLimitMb, 64, 'the run gets its own limit');
  await finishAll(server, executor);
});

test('the fast lane is served while the default lane is full of big runs', async (t) => {
  const server = await startServer(t);
  const executor = new FakeExecutor();
  const worker = await startWorker(t, {
    executor,
    config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'fast_lane:1@128 manual>*:3', maxMemoryMb: ceilingFor(4, 128 + 1000), runMemoryLimitMb: 256 }),
  });
  t.deepEqual(
    worker.lanes.map((lane) => [lane.id, lane.memoryMb]),
    [['fast_lane:1@128', 128], ['manual>*:3', 1000]],
  );
  const big = [await submitRun(server, { queue: 'manual', plan: holdPlan(600) }), await submitRun(server, { queue: 'default', plan: holdPlan(400) })];
  await waitFor(() => big.every((id) => executor.heldRunIds.includes(id)), { message: 'the default lane to hold its big runs' });
  const third = await submitRun(server, { queue: 'manual', plan: holdPlan(100) });
  t.true(await staysAvailable(server, third, 300), 'the default lane has slots but no memory left');

  const fast = await submitRun(server, { queue: 'fast_lane', plan: { ...simplePlan(), options: { run_memory_limit_mb: 100 } } });
  await waitFor(async () => (await stateOf(server, fast)) === 'success', { message: 'the fast run to finish' });
  t.is(await stateOf(server, third), 'available', 'the fast lane did not lend its memory to the default lane');
  executor.releaseAll();
  await waitFor(() => executor.heldRunIds.includes(third), { message: 'the third run once memory is back' });
  await finishAll(server, executor);
});

test('a run too big for every connected lane stays queued with its reason, and does not block smaller runs', async (t) => {
  const server = await startServer(t);
  const executor = new FakeExecutor();
  await startWorker(t, {
    executor,
    config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'manual>*:2', maxMemoryMb: ceilingFor(2, 1024), runMemoryLimitMb: 256 }),
  });
  const huge = await submitRun(server, { plan: holdPlan(4096) });
  const small = await submitRun(server, { plan: simplePlan() });
  await waitFor(async () => (await stateOf(server, small)) === 'success', { message: 'the small run behind it to run' });
  const { body } = await api<{ state: string; waiting_reason: string | null }>(server, 'GET', `/api/runs/${huge}`);
  t.is(body.state, 'available');
  t.regex(body.waiting_reason ?? '', /needs 4096 MB .*largest connected lane that takes queue "default" holds 1024 MB/);
  const { body: smallBody } = await api<{ waiting_reason: string | null }>(server, 'GET', `/api/runs/${small}`);
  t.is(smallBody.waiting_reason, null);
  t.is(executor.requests.length, 1, 'only the small run was handed out');
});

test('a big run that fits the lane is not starved by a stream of small ones', async (t) => {
  const server = await startServer(t);
  const executor = new FakeExecutor();
  await startWorker(t, {
    executor,
    config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'manual>*:4', maxMemoryMb: ceilingFor(4, 600), runMemoryLimitMb: 100 }),
  });
  const first = [await submitRun(server, { plan: holdPlan(200) }), await submitRun(server, { plan: holdPlan(200) })];
  await waitFor(() => first.every((id) => executor.heldRunIds.includes(id)), { message: 'two runs holding 400 MB' });
  const big = await submitRun(server, { plan: holdPlan(500) });
  const smalls = [await submitRun(server, { plan: holdPlan(100) }), await submitRun(server, { plan: holdPlan(100) })];
  // 200 MB are free: each small run would fit, but the big one is first in line.
  t.true(await staysAvailable(server, smalls[0] as string), 'small runs behind the big one wait');
  t.is(await stateOf(server, big), 'available');

  for (const id of first) executor.release(id);
  await waitFor(() => executor.heldRunIds.includes(big), { message: 'the big run to start once the lane has room' });
  await waitFor(() => executor.heldRunIds.includes(smalls[0] as string), { message: 'a small run beside it' });
  const order = executor.requests.map((request) => request.runId);
  t.true(order.indexOf(big) < order.indexOf(smalls[0] as string), 'the big run started before the small ones behind it');
  t.is(await stateOf(server, smalls[1] as string), 'available', '500 + 100 MB fill the lane');
  executor.releaseAll();
  await waitFor(() => executor.heldRunIds.includes(smalls[1] as string), { message: 'the last small run' });
  await finishAll(server, executor);
});

test('memory_claims is negotiated: claims carry memory only when the server offers it, and are then never held', async (t) => {
  const server = await startServer(t);
  const offered = await SlowServerProxy.start(t, server.port);
  const lightningLike = await SlowServerProxy.start(t, server.port);
  // Plays Lightning: the worker:queue join reply offers no capabilities.
  lightningLike.rewrite = (frame) => {
    const [joinRef, ref, topic, event, payload] = frame;
    if (topic === WORKER_QUEUE_TOPIC && event === 'phx_reply' && typeof payload === 'object' && payload !== null) {
      const reply = payload as { status?: string; response?: Record<string, unknown> };
      if (reply.response !== undefined && 'capabilities' in reply.response) return [joinRef, ref, topic, event, { ...reply, response: {} }];
    }
    return frame;
  };
  const config = { workloopsText: 'manual>*:2', maxMemoryMb: ceilingFor(2, 700), runMemoryLimitMb: 300 };
  for (const proxy of [offered, lightningLike]) {
    await startWorker(t, { executor: new FakeExecutor(), config: testConfig({ lightningUrl: proxy.workerUrl, ...config }) });
  }
  await waitFor(() => offered.sentEvents(CLAIM, WORKER_QUEUE_TOPIC).length > 0 && lightningLike.sentEvents(CLAIM, WORKER_QUEUE_TOPIC).length > 0, { message: 'both workers to claim' });

  const withMemory = offered.sentEvents(CLAIM, WORKER_QUEUE_TOPIC)[0]?.[4] as ClaimPayload;
  t.is(withMemory.max_run_memory_mb, 700);
  t.is(withMemory.lane_memory_mb, 700);
  t.is(withMemory.default_run_memory_mb, 300);
  t.is(withMemory.demand, 2);
  t.is(withMemory.hold_ms, undefined, 'a claim that says what memory fits is not held: its free memory would go stale while held');
  const plain = lightningLike.sentEvents(CLAIM, WORKER_QUEUE_TOPIC)[0]?.[4] as ClaimPayload;
  t.deepEqual(Object.keys(plain).sort(), ['demand', 'queues', 'worker_name'], 'the plain Lightning claim');
  t.is(plain.demand, 2, '700 MB hold two runs of the default 300 MB');
});

/** `lanes_worker_claims_total` summed over lanes and outcomes, from the worker's /metrics. */
async function claimsSent(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) if (line.startsWith('lanes_worker_claims_total{')) total += Number(line.split(' ').pop());
  return total;
}

test('the worker’s /metrics shows each lane’s memory and the ceiling; GET /api/workers shows them too', async (t) => {
  const server = await startServer(t);
  const executor = new FakeExecutor();
  const ceiling = ceilingFor(3, 128 + 800);
  const worker = await startWorker(t, {
    executor,
    config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'fast_lane:1@128 manual>*:2', maxMemoryMb: ceiling, runMemoryLimitMb: 256 }),
  });
  const held = await submitRun(server, { plan: holdPlan(300) });
  await waitFor(() => executor.heldRunIds.includes(held), { message: 'a run holding 300 MB' });
  const text = await (await fetch(`http://127.0.0.1:${worker.healthPort}/metrics`)).text();
  const MB = 1024 * 1024;
  const gauge = (name: string, lane: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`lane="${lane}"`));
    return Number(line?.split(' ').pop());
  };
  t.is(gauge('lanes_worker_lane_memory_bytes', 'manual>*:2'), 800 * MB);
  t.is(gauge('lanes_worker_lane_memory_reserved_bytes', 'manual>*:2'), 300 * MB);
  t.is(gauge('lanes_worker_lane_memory_free_bytes', 'manual>*:2'), 500 * MB);
  t.is(gauge('lanes_worker_lane_memory_bytes', 'fast_lane:1@128'), 128 * MB);
  t.is(gauge('lanes_worker_lane_memory_reserved_bytes', 'fast_lane:1@128'), 0);
  t.true(text.includes('lanes_worker_lane_memory_in_use_bytes{'), 'resident memory in use per lane');
  t.regex(text, new RegExp(`lanes_worker_memory_ceiling_bytes\\{[^}]*\\} ${ceiling * MB}`));

  const { body } = await api<{ workers: Array<{ lanes_memory_mb: Record<string, number> | null; memory_ceiling_mb: number | null }> }>(server, 'GET', '/api/workers');
  t.deepEqual(body.workers[0]?.lanes_memory_mb, { fast_lane: 128, 'manual>*': 800 });
  t.is(body.workers[0]?.memory_ceiling_mb, ceiling);
  await finishAll(server, executor);
});
