/**
 * `work_queues` on the worker: a push that names its queues wakes only the
 * lanes whose chain could take one of them; a push without names (Lightning)
 * wakes every lane; and nothing is lost. The lanes back off for a minute
 * after an empty claim, so a push is the only thing that makes them claim
 * again within a test: a lane not woken when it should be shows as a run
 * that never ends. The server holds no claims here (`holdClaims: false`):
 * with held claims a lane waits in its claim, not for a push
 * (test/server/held-claims.test.ts).
 */
import test from 'ava';
import { WORK_AVAILABLE, WORKER_QUEUE_TOPIC } from '../../src/protocol/events.ts';
import type { LanesServer } from '../../src/server/index.ts';
import type { Worker } from '../../src/worker/index.ts';
import { SlowServerProxy } from '../reliability/slow-server-proxy.ts';
import { api, simplePlan, startServer, submitRun, waitFor } from '../server/helpers.ts';
import { FakeExecutor, startWorker, testConfig } from './helpers.ts';

/** No claim of their own for a minute after an empty one: only pushes (and finished runs) make the lanes claim. */
const SLOW_BACKOFF = { minMs: 60_000, maxMs: 60_000 };
const LANES = 'fast_lane:1 manual>*:2 other:1';

/** `lanes_worker_claims_total` per lane (all outcomes), from the worker's /metrics. */
async function claimsByLane(worker: Worker): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${worker.healthPort}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = /^lanes_worker_claims_total\{[^}]*lane="([^"]+)"[^}]*\} (\d+)/.exec(line);
    if (match) counts[match[1]!] = (counts[match[1]!] ?? 0) + Number(match[2]);
  }
  return counts;
}

async function runState(server: LanesServer, id: string): Promise<string> {
  return (await api<{ state: string }>(server, 'GET', `/api/runs/${id}`)).body.state;
}

/** Every lane has sent the claims its join triggers and is backing off (from then on only a wake makes it claim). */
async function settled(worker: Worker): Promise<Record<string, number>> {
  return waitFor(
    async () => {
      // Counts read on both sides of the states: a lane may settle a claim and send the next one between two reads.
      const counts = await claimsByLane(worker);
      const waiting = worker.lanes.every((lane) => lane.state === 'waiting' && (counts[lane.id] ?? 0) >= 1);
      const again = await claimsByLane(worker);
      return waiting && JSON.stringify(again) === JSON.stringify(counts) && worker.lanes.every((lane) => lane.state === 'waiting') ? counts : undefined;
    },
    { message: 'every lane to claim after the join and back off' },
  );
}

test('a push naming manual wakes only the lanes that could take it; one naming other wakes only other', async (t) => {
  const server = await startServer(t, { holdClaims: false });
  const worker = await startWorker(t, { executor: new FakeExecutor(), config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'fast_lane:1 manual:2 other:1', backoff: SLOW_BACKOFF }) });
  const before = await settled(worker);
  for (let i = 0; i < 3; i += 1) {
    const id = await submitRun(server, { queue: 'manual' });
    await waitFor(async () => (await runState(server, id)) === 'success', { message: `manual run ${i} to finish` });
  }
  // Settled: the manual lane has made the claims its finished runs set off, before the other run is submitted.
  const afterManual = await settled(worker);
  t.true((afterManual['manual:2'] ?? 0) >= (before['manual:2'] ?? 0) + 3, 'the manual lane claimed each run');
  t.is(afterManual['fast_lane:1'], before['fast_lane:1'], 'the fast lane was not woken');
  t.is(afterManual['other:1'], before['other:1'], 'the other lane was not woken');
  const other = await submitRun(server, { queue: 'other' });
  await waitFor(async () => (await runState(server, other)) === 'success', { message: 'the other run to finish' });
  const afterOther = await claimsByLane(worker);
  t.true((afterOther['other:1'] ?? 0) > (afterManual['other:1'] ?? 0), 'the other lane was woken');
  t.is(afterOther['fast_lane:1'], before['fast_lane:1'], 'the fast lane was still not woken');
  t.is(afterOther['manual:2'], afterManual['manual:2'], 'the manual lane was not woken by other');
});

test('a push that wakes a lane taking any queue wakes the lanes that pin theirs too, so they claim before it', async (t) => {
  const server = await startServer(t, { holdClaims: false });
  const worker = await startWorker(t, { executor: new FakeExecutor(), config: testConfig({ lightningUrl: server.workerUrl, workloopsText: LANES, backoff: SLOW_BACKOFF }) });
  const before = await settled(worker);
  const id = await submitRun(server, { queue: 'manual' });
  await waitFor(async () => (await runState(server, id)) === 'success', { message: 'the manual run to finish' });
  // The `*` lane could take a fast_lane or other run queued just after this push: the pinning lanes get their turn first.
  const after = await waitFor(async () => {
    const counts = await claimsByLane(worker);
    return (counts['fast_lane:1'] ?? 0) > (before['fast_lane:1'] ?? 0) && (counts['other:1'] ?? 0) > (before['other:1'] ?? 0) ? counts : undefined;
  }, { message: 'the pinning lanes to be woken by the manual push' });
  t.true((after['manual>*:2'] ?? 0) > (before['manual>*:2'] ?? 0), 'the wildcard lane claimed the run');
});

test('next to a server that does not offer work_queues (Lightning sends {}), every lane wakes on every push', async (t) => {
  const server = await startServer(t, { holdClaims: false });
  const lightningLike = await SlowServerProxy.start(t, server.port);
  let plainPushes = 0;
  // Plays Lightning: the join reply offers nothing, and work-available carries no queues.
  lightningLike.rewrite = (frame) => {
    const [joinRef, ref, topic, event, payload] = frame;
    if (topic !== WORKER_QUEUE_TOPIC) return frame;
    if (event === WORK_AVAILABLE) {
      plainPushes += 1;
      return [joinRef, ref, topic, event, {}];
    }
    if (event === 'phx_reply' && typeof payload === 'object' && payload !== null) {
      const reply = payload as { status?: string; response?: Record<string, unknown> };
      if (reply.response !== undefined && 'capabilities' in reply.response) return [joinRef, ref, topic, event, { ...reply, response: {} }];
    }
    return frame;
  };
  const worker = await startWorker(t, { executor: new FakeExecutor(), config: testConfig({ lightningUrl: lightningLike.workerUrl, workloopsText: LANES, backoff: SLOW_BACKOFF }) });
  const before = await settled(worker);
  const id = await submitRun(server, { queue: 'manual' });
  await waitFor(async () => (await runState(server, id)) === 'success', { message: 'the manual run to finish' });
  const after = await waitFor(
    async () => {
      const counts = await claimsByLane(worker);
      return (counts['fast_lane:1'] ?? 0) > (before['fast_lane:1'] ?? 0) && (counts['other:1'] ?? 0) > (before['other:1'] ?? 0) ? counts : undefined;
    },
    { message: 'the fast and other lanes to claim on the push' },
  );
  t.true(plainPushes >= 1);
  t.true((after['manual>*:2'] ?? 0) > (before['manual>*:2'] ?? 0));
});

test('nothing is lost: a burst of runs over several queues all run, with pushes as the only wake-up', async (t) => {
  const server = await startServer(t, { holdClaims: false });
  const worker = await startWorker(t, {
    executor: new FakeExecutor(),
    config: testConfig({ lightningUrl: server.workerUrl, workloopsText: `${LANES} b>c:1`, backoff: SLOW_BACKOFF }),
  });
  await settled(worker);
  const queues = ['fast_lane', 'manual', 'other', 'b', 'c', 'misc'];
  let finished = 0;
  for (let round = 0; round < 3; round += 1) {
    const ids = await Promise.all(Array.from({ length: 18 }, (_, i) => submitRun(server, { queue: queues[i % queues.length]! })));
    await waitFor(
      async () => {
        const states = await Promise.all(ids.map((id) => runState(server, id)));
        return states.every((state) => state === 'success');
      },
      { timeoutMs: 20_000, message: `every run of burst ${round} to finish` },
    );
    finished += ids.length;
  }
  const runs = await api<{ runs: unknown[] }>(server, 'GET', '/api/runs?state=success&limit=1000');
  t.is(runs.body.runs.length, finished);
});

test('nothing is lost: the trailing push of a window wakes the idle lanes of every queue queued in it', async (t) => {
  // A window long enough that the runs below are all queued inside it, on a loaded machine too.
  const server = await startServer(t, { workAvailableDebounceMs: 1_000, holdClaims: false });
  const executor = new FakeExecutor();
  const worker = await startWorker(t, { executor, config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'a:1 b:1 c:1', backoff: SLOW_BACKOFF }) });
  await settled(worker);
  // Lane a is busy: the push for its next run makes no claim, so what follows waits for the window's trailing push.
  const held = await submitRun(server, { queue: 'a', plan: simplePlan('hold') });
  await waitFor(() => executor.heldRunIds.includes(held), { message: 'the held run to start' });
  const queued = await submitRun(server, { queue: 'a' });
  const forB = await submitRun(server, { queue: 'b' });
  const forC = await submitRun(server, { queue: 'c' });
  await waitFor(async () => (await runState(server, forB)) === 'success' && (await runState(server, forC)) === 'success', {
    message: 'the runs of b and c to finish though their lanes were backing off',
  });
  executor.release(held);
  await waitFor(async () => (await runState(server, queued)) === 'success', { message: 'the queued run of a to finish after the held one' });
  t.is(await runState(server, held), 'success');
});
