/**
 * Issue 7, point 3 and the event half of point 2: a slow server.
 *
 * A frame-aware proxy (slow-server-proxy.ts) sits between an in-process
 * worker and the real server and holds every server→worker frame: claim
 * replies then arrive after the worker's claim timeout (the phoenix client
 * drops them), run-event replies after the message timeout, and
 * `work-available` pushes pile up and land in a burst.
 */
import test from 'ava';
import type { EngineRunComplete, RunExecutor, RunRequest } from '../../src/engine/types.ts';
import { RUN_COMPLETE, RUN_HEARTBEAT, STEP_COMPLETE, WORKER_QUEUE_TOPIC, runTopic } from '../../src/protocol/events.ts';
import type { Worker } from '../../src/worker/index.ts';
import { api, simplePlan, startServer, submitRun, waitFor } from '../server/helpers.ts';
import { FakeExecutor, startWorker, testConfig } from '../worker/helpers.ts';
import { getRun, waitAllTerminal } from './process-cluster.ts';
import type { PhoenixFrame } from './slow-server-proxy.ts';
import { SlowServerProxy } from './slow-server-proxy.ts';

/** The fake engine, slowed a little so lanes stay busy, counting how many runs execute at once and how often each run executes. */
class CountingExecutor implements RunExecutor {
  readonly inner = new FakeExecutor();
  active = 0;
  maxActive = 0;
  readonly executions = new Map<string, number>();

  async execute(request: RunRequest): Promise<EngineRunComplete> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    this.executions.set(request.runId, (this.executions.get(request.runId) ?? 0) + 1);
    try {
      // Work that takes a moment, so several runs overlap on a lane.
      await new Promise((resolve) => setTimeout(resolve, 30));
      return await this.inner.execute(request);
    } finally {
      this.active--;
    }
  }
}

/** Samples every lane's occupancy until stopped: the most any lane ever used or promised. */
function watchLanes(worker: Worker): { stop: () => void; over: string[] } {
  const over: string[] = [];
  const timer = setInterval(() => {
    for (const lane of worker.lanes) {
      if (lane.active > lane.capacity || lane.active + lane.inFlight > lane.capacity) {
        over.push(`${lane.id}: active ${lane.active}, in flight ${lane.inFlight}`);
      }
    }
  }, 1);
  return { stop: () => clearInterval(timer), over };
}

test('claim replies held past the claim timeout: lanes stay within capacity, and every run the server gave away is executed or comes back lost and is retried', async (t) => {
  // The plans keep the default run timeout (5 minutes): without heartbeat leasing from the claim, a run in a
  // dropped claim reply would only come back after it, far past this test's deadline.
  const server = await startServer(t, { leaseMs: 1_000, heartbeatIntervalMs: 200, sweepIntervalMs: 50, retryBackoffBaseMs: 50, defaultMaxAttempts: 3 });
  const proxy = await SlowServerProxy.start(t, server.port);
  const executor = new CountingExecutor();
  const worker = await startWorker(t, {
    config: testConfig({ lightningUrl: proxy.workerUrl, workloopsText: 'fast_lane:1 manual>*:2', claimTimeoutMs: 300, messageTimeoutMs: 2_000 }),
    executor,
  });
  await worker.whenConnected();
  const watch = watchLanes(worker);
  t.teardown(() => watch.stop());

  proxy.hold();
  const burst = await Promise.all([
    ...Array.from({ length: 2 }, () => submitRun(server, { queue: 'fast_lane' })),
    ...Array.from({ length: 4 }, () => submitRun(server, { queue: 'manual' })),
  ]);
  // The lanes' claims keep reaching the server, which hands out runs in replies the worker never sees in time.
  await waitFor(async () => (await Promise.all(burst.map((id) => getRun(server, id)))).every((run) => run.state === 'claimed'), {
    timeoutMs: 15_000,
    message: 'the server to have handed out every run of the burst',
  });
  const claimsSent = proxy.sentEvents('claim', WORKER_QUEUE_TOPIC).length;
  t.true(claimsSent > 2, `claims were retried after timing out (${claimsSent} sent)`);
  proxy.release();

  // A second burst once the server answers again: many work-available pushes, never more than capacity.
  const second = await Promise.all(Array.from({ length: 10 }, (_, i) => submitRun(server, { queue: i % 3 === 0 ? 'fast_lane' : 'manual' })));
  const all = [...burst, ...second];
  const runs = await waitAllTerminal(server, all, 30_000);
  watch.stop();

  for (const run of runs) {
    t.is(run.state, 'success', `run ${run.id} ends success`);
    const lost = run.history.slice(0, -1);
    t.true(lost.every((attempt) => attempt.state === 'lost' && attempt.error_message === 'no heartbeat within the lease'), `run ${run.id}: earlier attempts were lost by lease`);
    t.is(executor.executions.get(run.id), 1, `run ${run.id} executed exactly once`);
  }
  const recovered = runs.filter((run) => run.history.length > 1);
  t.true(recovered.length > 0, 'some runs were in dropped claim replies and came back through the lease');
  t.deepEqual(watch.over, [], 'no lane ever went past its capacity');
  t.true(executor.maxActive <= 3, `at most the worker's capacity ran at once (${executor.maxActive})`);
});

function expectOneRun(runs: PhoenixFrame[], runId: string): PhoenixFrame[] {
  return runs.filter((frame) => frame[2] === runTopic(runId));
}

test('a run event whose reply times out is resent under idempotent_events and stored once; heartbeats follow run:start', async (t) => {
  const server = await startServer(t, { heartbeatIntervalMs: 200 });
  const proxy = await SlowServerProxy.start(t, server.port);
  const executor = new FakeExecutor();
  await startWorker(t, {
    config: testConfig({ lightningUrl: proxy.workerUrl, workloopsText: 'manual>*:1', messageTimeoutMs: 300 }),
    executor,
  });
  const id = await submitRun(server, { plan: simplePlan('hold') });
  await waitFor(() => executor.heldRunIds.includes(id), { message: 'the run to be executing' });
  // The plan and input came with the claim (claim_plans): nothing comes between the join and run:start
  // (the lease runs from the claim), then the beats come.
  // The run executes before its join has gone out: wait for the join and the first event.
  const onRun = await waitFor(() => {
    const events = expectOneRun(proxy.sent, id).map((frame) => frame[3]);
    return events.length >= 2 ? events : null;
  }, { message: 'the join and the first event on the run channel' });
  t.deepEqual(onRun.slice(0, 2), ['phx_join', 'run:start']);
  t.false(onRun.includes('fetch:plan') || onRun.includes('fetch:dataclip'), onRun.join(' '));
  await waitFor(() => proxy.sentEvents(RUN_HEARTBEAT, runTopic(id)).length >= 2, { message: 'heartbeats while the run executes' });

  // The log lines sent before the hold are stored (their replies may still be on the way: then they are resent first).
  await waitFor(async () => (await api<{ logs: unknown[] }>(server, 'GET', `/api/runs/${id}/logs`)).body.logs.length === 2, { message: 'the logs stored' });
  proxy.hold();
  executor.release(id);
  // The step:complete reaches the server; its reply does not reach the worker, which resends the same event.
  await waitFor(() => proxy.sentEvents(STEP_COMPLETE, runTopic(id)).length >= 2, { timeoutMs: 20_000, message: 'step:complete to be resent' });
  proxy.release();

  const [run] = await waitAllTerminal(server, [id]);
  t.is(run?.state, 'success');
  const sends = proxy.sentEvents(STEP_COMPLETE, runTopic(id));
  t.true(sends.every((frame) => JSON.stringify(frame[4]) === JSON.stringify(sends[0]?.[4])), 'every resend carries the same payload (and keys)');
  t.is(run?.steps.length, 1, 'one step row despite the resends');
  const logs = await api<{ logs: unknown[] }>(server, 'GET', `/api/runs/${id}/logs`);
  t.is(logs.body.logs.length, 2, 'each log line stored once');
});

test('against a server without the extensions nothing is resent and no heartbeat is sent', async (t) => {
  const server = await startServer(t);
  const proxy = await SlowServerProxy.start(t, server.port);
  // Plays Lightning: the worker:queue join reply offers no capabilities.
  proxy.rewrite = (frame) => {
    const [joinRef, ref, topic, event, payload] = frame;
    if (topic === WORKER_QUEUE_TOPIC && event === 'phx_reply' && typeof payload === 'object' && payload !== null) {
      const reply = payload as { status?: string; response?: Record<string, unknown> };
      if (reply.response !== undefined && 'capabilities' in reply.response) return [joinRef, ref, topic, event, { ...reply, response: {} }];
    }
    return frame;
  };
  const executor = new FakeExecutor();
  await startWorker(t, {
    config: testConfig({ lightningUrl: proxy.workerUrl, workloopsText: 'manual>*:1', messageTimeoutMs: 300 }),
    executor,
  });
  const id = await submitRun(server, { plan: simplePlan('hold') });
  await waitFor(() => executor.heldRunIds.includes(id), { message: 'the run to be executing' });

  proxy.hold();
  executor.release(id);
  // Events go strictly in order: run:complete is only sent once step:complete was given up on.
  await waitFor(() => proxy.sentEvents(RUN_COMPLETE, runTopic(id)).length >= 1, { timeoutMs: 20_000, message: 'run:complete to be sent' });
  proxy.release();

  const [run] = await waitAllTerminal(server, [id]);
  t.is(run?.state, 'success', 'the server acted on the events whose replies were late');
  t.is(proxy.sentEvents(STEP_COMPLETE, runTopic(id)).length, 1, 'step:complete was not resent');
  t.is(proxy.sentEvents(RUN_COMPLETE, runTopic(id)).length, 1, 'run:complete was not resent');
  t.is(proxy.sentEvents(RUN_HEARTBEAT).length, 0, 'no heartbeat without run_heartbeat');
  t.is(run?.steps.length, 1);
});

test('a stop gives up at once a run event still waiting for its reply: the run ends, nothing is resent into the closed socket', async (t) => {
  const server = await startServer(t, { heartbeatIntervalMs: 200 });
  const proxy = await SlowServerProxy.start(t, server.port);
  const executor = new FakeExecutor();
  // A reply would be waited for (and the event resent) for a minute: far past this test's deadline.
  const worker = await startWorker(t, {
    config: testConfig({ lightningUrl: proxy.workerUrl, workloopsText: 'manual>*:1', messageTimeoutMs: 60_000 }),
    executor,
  });
  const id = await submitRun(server, { plan: simplePlan('hold') });
  await waitFor(() => executor.heldRunIds.includes(id), { message: 'the run to be executing' });
  await waitFor(async () => (await api<{ logs: unknown[] }>(server, 'GET', `/api/runs/${id}/logs`)).body.logs.length === 2, { message: 'the logs stored' });
  proxy.hold();
  executor.release(id);
  await waitFor(() => proxy.sentEvents(STEP_COMPLETE, runTopic(id)).length >= 1, { message: 'step:complete sent, its reply held' });

  await worker.stop({ force: true });
  await waitFor(() => worker.activeRunIds.length === 0, { timeoutMs: 3_000, message: 'the run to have ended once the connection closed' });
  t.is(proxy.sentEvents(STEP_COMPLETE, runTopic(id)).length, 1, 'step:complete was not resent');
  t.is(proxy.sentEvents(RUN_COMPLETE, runTopic(id)).length, 0, 'nothing after it was sent either');
});
