/**
 * Issue 12, item 4: the server sees a worker's socket close at once, so the
 * runs of a killed worker are lost and retried within seconds, not after the
 * 30 s heartbeat lease; a worker whose connection drops and comes back within
 * the reconnect grace keeps its runs. Server defaults throughout (lease 30 s,
 * grace 5 s, sweep every second, retry backoff 1 s, heartbeats every 10 s).
 */
import test from 'ava';
import { startServer, submitRun, waitFor } from '../server/helpers.ts';
import { HOLD_FOR, fixturePlan, getRun, prepareAdaptorRepo, spawnWorker, waitAllTerminal } from './process-cluster.ts';
import { SlowServerProxy } from './slow-server-proxy.ts';

const DEFAULTS = { sweepIntervalMs: 1_000 } as const;

test('SIGKILL of a worker with runs in flight: lost and retried on another worker within 10 s of the kill, with the default 30 s lease', async (t) => {
  const server = await startServer(t, DEFAULTS);
  t.is(server.options.leaseMs, 30_000);
  t.is(server.options.reconnectGraceMs, 5_000);
  const repoDir = await prepareAdaptorRepo(t);
  const doomed = spawnWorker(t, { lightningUrl: server.workerUrl, workloops: 'fast_lane:1 manual>*:2', repoDir });
  const doomedId = await doomed.workerId();
  await doomed.waitForLog('joined worker:queue');
  const holdMs = 60_000;
  const ids = await Promise.all([
    submitRun(server, { queue: 'fast_lane', max_attempts: 2, plan: fixturePlan(HOLD_FOR), input: { holdMs } }),
    submitRun(server, { queue: 'manual', max_attempts: 2, plan: fixturePlan(HOLD_FOR), input: { holdMs } }),
  ]);
  await waitFor(async () => (await Promise.all(ids.map((id) => getRun(server, id)))).every((run) => run.state === 'started' && run.worker === doomedId), {
    timeoutMs: 20_000,
    message: 'both runs started on the first worker',
  });
  // The rescuer is up and idle before the kill: what is measured is the server noticing, not a worker starting.
  const rescuer = spawnWorker(t, { lightningUrl: server.workerUrl, workloops: 'fast_lane:1 manual>*:2', repoDir });
  const rescuerId = await rescuer.workerId();
  await rescuer.waitForLog('joined worker:queue');

  const killedAt = Date.now();
  doomed.child.kill('SIGKILL');
  await waitFor(async () => (await Promise.all(ids.map((id) => getRun(server, id)))).every((run) => run.history.length === 2 && run.history[1]?.worker === rescuerId), {
    timeoutMs: 20_000,
    intervalMs: 50,
    message: 'both runs retried on the rescuer',
  });
  for (const id of ids) {
    const run = await getRun(server, id);
    const [first, second] = run.history;
    t.is(first?.state, 'lost');
    t.is(first?.error_message, 'no heartbeat within the lease');
    const lostAfter = Date.parse(first?.finished_at ?? '') - killedAt;
    const retriedAfter = Date.parse(second?.claimed_at ?? '') - killedAt;
    t.log(`run ${id}: lost ${lostAfter} ms and claimed again ${retriedAfter} ms after the kill`);
    t.true(lostAfter < 10_000, `lost within 10 s (${lostAfter} ms), not after the 30 s lease`);
    t.true(retriedAfter < 10_000, `retried within 10 s of the kill (${retriedAfter} ms)`);
  }
  // The retries run to the end on the rescuer (they hold a minute: cut them short).
  rescuer.child.kill('SIGKILL');
});

test('a worker whose connection drops and comes back within the grace keeps its runs: one attempt, success', async (t) => {
  // A short grace: the reconnect and the rejoin must beat it.
  const server = await startServer(t, { ...DEFAULTS, reconnectGraceMs: 1_000 });
  const proxy = await SlowServerProxy.start(t, server.port);
  const repoDir = await prepareAdaptorRepo(t);
  const worker = spawnWorker(t, { lightningUrl: `ws://127.0.0.1:${proxy.port}/worker`, workloops: 'manual>*:2', repoDir });
  const workerId = await worker.workerId();
  await worker.waitForLog('joined worker:queue');
  // Longer than the grace: were the lease not restored on the rejoin, the run would be lost mid-way.
  const id = await submitRun(server, { queue: 'manual', max_attempts: 2, plan: fixturePlan(HOLD_FOR), input: { holdMs: 9_000 } });
  await waitFor(async () => (await getRun(server, id)).state === 'started', { timeoutMs: 20_000, message: 'the run started' });

  proxy.dropAll();
  await worker.waitForLog('joined worker:queue', (line) => Number(line['reconnects']) >= 1, 20_000);
  const [run] = await waitAllTerminal(server, [id], 40_000);
  t.is(run?.state, 'success');
  t.is(run?.history.length, 1, 'no second attempt');
  t.is(run?.worker, workerId);
});
