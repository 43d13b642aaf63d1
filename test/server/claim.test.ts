import test from 'ava';
import { api, claim, connectWorker, joinQueue, nextPush,
  push, startServer, submitRun, waitFor } from './helpers.ts';

test('a strict chain only takes runs of its named queues', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server);
  const { channel } = await joinQueue(socket, { fast_lane: 1, 'manual>*': 4 });
  const other = await submitRun(server, { queue: 'other' });
  t.deepEqual(await claim(channel, ['fast_lane'], 5), []);
  const fast = await submitRun(server, { queue: 'fast_lane' });
  t.deepEqual((await claim(channel, ['fast_lane'], 5)).map((run) => run.id), [fast]);
  t.deepEqual((await claim(channel, ['manual', '*'], 5)).map((run) => run.id), [other]);
});

test('a wildcard chain takes named queues in list order first, then any queue, by priority then age', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server);
  const { channel } = await joinQueue(socket, { 'a>b>*': 10 });
  const other1 = await submitRun(server, { queue: 'zzz' });
  const b1 = await submitRun(server, { queue: 'b' });
  const other2 = await submitRun(server, { queue: 'yyy', priority: 5 });
  const a1 = await submitRun(server, { queue: 'a' });
  const b2 = await submitRun(server, { queue: 'b', priority: 10 });
  const a2 = await submitRun(server, { queue: 'a' });
  const ids = (await claim(channel, ['a', 'b', '*'], 10)).map((run) => run.id);
  t.deepEqual(ids, [a1, a2, b2, b1, other2, other1]);
});

test('a missing queues list means manual>*', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server);
  const { channel } = await joinQueue(socket);
  const other = await submitRun(server, { queue: 'default' });
  const manual = await submitRun(server, { queue: 'manual' });
  t.deepEqual((await claim(channel, undefined, 2)).map((run) => run.id), [manual, other]);
});

test('demand caps how many runs one claim gets', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server);
  const { channel } = await joinQueue(socket);
  for (let i = 0; i < 5; i += 1) await submitRun(server);
  t.is((await claim(channel, ['*'], 2)).length, 2);
  t.is((await claim(channel, ['*'], 1)).length, 1);
  t.is((await claim(channel, ['*'], 10)).length, 2);
  t.is((await claim(channel, ['*'], 10)).length, 0);
});

test('suspended queues are skipped until resumed, and resuming wakes the workers', async (t) => {
  const server = await startServer(t, { workAvailableDebounceMs: 0 });
  const socket = await connectWorker(t, server);
  const { channel } = await joinQueue(socket, { 'manual>*': 2 });
  t.is((await api(server, 'POST', '/api/queues/manual/suspend')).status, 200);
  const manual = await submitRun(server, { queue: 'manual' });
  const other = await submitRun(server, { queue: 'other' });
  t.deepEqual((await claim(channel, ['manual', '*'], 5)).map((run) => run.id), [other]);
  const queues = await api<{ queues: Array<{ name: string; suspended: boolean; counts: Record<string, number> }> }>(server, 'GET', '/api/queues');
  const manualStats = queues.body.queues.find((queue) => queue.name === 'manual');
  t.deepEqual(manualStats?.counts, { available: 1 });
  t.true(manualStats?.suspended);
  const woken = nextPush(channel, 'work-available');
  t.is((await api(server, 'POST', '/api/queues/manual/resume')).status, 200);
  await woken;
  t.deepEqual((await claim(channel, ['manual'], 5)).map((run) => run.id), [manual]);
});

test('work-available goes at once to workers whose lanes could take the run, and a burst is coalesced', async (t) => {
  // A window far longer than a submission and its push take on a loaded machine (on PostgreSQL under CI's
  // parallel files, more than 1.5 s), so "not held back by it" is told apart from a slow machine.
  const windowMs = 10_000;
  const server = await startServer(t, { workAvailableDebounceMs: windowMs });
  const fastSocket = await connectWorker(t, server, { workerId: 'fast' });
  const { channel: fast } = await joinQueue(fastSocket, { fast_lane: 1 });
  const wildcardSocket = await connectWorker(t, server, { workerId: 'any' });
  const { channel: wildcard } = await joinQueue(wildcardSocket, { 'manual>*': 2 });
  let fastPushes = 0;
  let wildcardPushes = 0;
  fast.on('work-available', () => {
    fastPushes += 1;
  });
  wildcard.on('work-available', () => {
    wildcardPushes += 1;
  });
  const started = Date.now();
  const first = nextPush(wildcard, 'work-available', windowMs + 20_000);
  await submitRun(server, { queue: 'manual' });
  await first;
  // Leading edge: a push held back by the window would come windowMs after the enqueue at the earliest.
  const elapsed = Date.now() - started;
  t.true(elapsed < windowMs, `first push after ${elapsed} ms`);
  for (let i = 0; i < 5; i += 1) await submitRun(server, { queue: 'manual' });
  await waitFor(() => wildcardPushes >= 2, { timeoutMs: windowMs + 20_000, message: 'trailing push' });
  t.is(fastPushes, 0);
  await submitRun(server, { queue: 'fast_lane' });
  await waitFor(() => fastPushes === 1, { message: 'fast lane push' });
  t.true(wildcardPushes <= 3);
});

test('two workers claiming concurrently never get the same run', async (t) => {
  const server = await startServer(t, { workAvailableDebounceMs: 0 });
  const total = 300;
  const body = { plan: { jobs: [{ id: 'j', body: 'x', adaptor: 'a' }] } };
  await Promise.all(Array.from({ length: total }, () => api(server, 'POST', '/api/runs', body)));
  const channels = await Promise.all(
    ['w1', 'w2', 'w3'].map(async (workerId) => (await joinQueue(await connectWorker(t, server, { workerId }), { '*': 10 })).channel),
  );
  const seen = new Map<string, number>();
  await Promise.all(
    channels.map(async (channel) => {
      for (;;) {
        const runs = await claim(channel, ['*'], 7);
        if (runs.length === 0) return;
        for (const run of runs) seen.set(run.id, (seen.get(run.id) ?? 0) + 1);
      }
    }),
  );
  t.is(seen.size, total);
  t.true([...seen.values()].every((count) => count === 1));
  const claimed = await api<{ runs: unknown[] }>(server, 'GET', '/api/runs?state=claimed&limit=1000');
  t.is(claimed.body.runs.length, total);
});

test('a run queued after the worker claimed is pushed at once, even inside the coalescing window', async (t) => {
  const server = await startServer(t, { workAvailableDebounceMs: 60_000 });
  const socket = await connectWorker(t, server, { workerId: 'sequential' });
  const { channel } = await joinQueue(socket, { 'manual>*': 1 });
  let pushes = 0;
  channel.on('work-available', () => {
    pushes += 1;
  });
  // One run at a time, as a worker with one idle slot sees them: each push is acted on by a claim.
  for (let i = 1; i <= 3; i += 1) {
    const id = await submitRun(server, { queue: 'manual' });
    await waitFor(() => pushes === i, { message: `push ${i} inside a 60 s window` });
    t.deepEqual((await claim(channel, ['manual', '*'], 1)).map((run) => run.id), [id]);
  }
  // Without a claim in between, a second enqueue waits for the window's trailing push.
  await submitRun(server, { queue: 'manual' });
  await waitFor(() => pushes === 4, { message: 'leading push' });
  await submitRun(server, { queue: 'manual' });
  // A reply on the same socket comes after any push the enqueue sent: frames are ordered.
  t.is((await push(channel, 'no-such-event', {})).status, 'error');
  t.is(pushes, 4);
});

test('a memory claim packs runs into the free memory, in order, skipping runs that never fit the lane; bad memory fields get field errors', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server);
  const { channel, reply } = await joinQueue(socket, { 'manual>*': 4 });
  t.true(reply.capabilities?.includes('memory_claims'));
  const withMemory = (mb: number) => ({ jobs: [{ id: 'job-1', body: 'fn(s => s)', adaptor: '@openfn/language-common@latest' }], triggers: [{ id: 't' }], edges: [{ id: 'e', source_trigger_id: 't', target_job_id: 'job-1' }], options: { run_memory_limit_mb: mb } });
  const tooBig = await submitRun(server, { plan: withMemory(2000) });
  const a = await submitRun(server, { plan: withMemory(300) });
  const plain = await submitRun(server, {});
  const b = await submitRun(server, { plan: withMemory(300) });
  const memory = { max_run_memory_mb: 700, lane_memory_mb: 1000, default_run_memory_mb: 200 };
  const first = await push<{ runs: Array<{ id: string; memory_mb?: number }> }>(channel, 'claim', { demand: 4, worker_name: null, queues: ['manual', '*'], ...memory });
  t.is(first.status, 'ok');
  // 300 + 200 (the plan without a declared need counts the claim's default) fit in 700; b (300) does not, and ends the claim.
  t.deepEqual(first.response.runs.map((run) => [run.id, run.memory_mb]), [[a, 300], [plain, 200]]);
  const second = await push<{ runs: Array<{ id: string }> }>(channel, 'claim', { demand: 4, worker_name: null, queues: ['manual', '*'], ...memory });
  t.deepEqual(second.response.runs.map((run) => run.id), [b]);
  const { body } = await api<{ state: string }>(server, 'GET', `/api/runs/${tooBig}`);
  t.is(body.state, 'available', 'the 2000 MB run never fits a 1000 MB lane');

  for (const bad of [{ max_run_memory_mb: -1, lane_memory_mb: 1, default_run_memory_mb: 1 }, { max_run_memory_mb: 100 }, { max_run_memory_mb: 1.5, lane_memory_mb: 'x', default_run_memory_mb: 1 }]) {
    const result = await push<Record<string, string[]>>(channel, 'claim', { demand: 1, worker_name: null, queues: ['manual', '*'], ...bad });
    t.is(result.status, 'error', JSON.stringify(bad));
    t.truthy(result.response['max_run_memory_mb'] ?? result.response['lane_memory_mb'], JSON.stringify(result.response));
  }
  // The channel lives on; a claim without memory fields (a Lightning-style worker) does not consider memory.
  t.deepEqual((await claim(channel, ['manual', '*'], 1)).map((run) => run.id), [tooBig]);
});
