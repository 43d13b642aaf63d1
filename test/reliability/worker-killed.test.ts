/**
 * Issue 7, point 1: a real `lanes worker` process is SIGKILLed with runs in
 * flight on two lanes. The server (in process, short heartbeat lease) must
 * mark them `lost` through the heartbeat lease, not the run-timeout rule;
 * runs with an attempt left are retried on another worker process; each run
 * ends in exactly one terminal state; and no run executes twice at the same
 * time (the killed worker's engine children die with it, and the attempts in
 * the server's history do not overlap).
 */
import test from 'ava';
import { startServer, submitRun, waitFor } from '../server/helpers.ts';
import { descendants, fixturePlan, isAlive, prepareAdaptorRepo, spawnWorker, waitAllTerminal, waitForRuns } from './process-cluster.ts';

/** Sleeps until `state.holdUntil` (epoch ms): the first attempt is still running when the worker dies, a retry after it ends at once. */
const HOLD = 'fn(state => new Promise(resolve => setTimeout(() => resolve(state), Math.max(0, state.holdUntil - Date.now()))))';

test('SIGKILL of a worker with runs on two lanes: lost within the lease, retried once elsewhere, never run twice at once', async (t) => {
  const leaseMs = 1_500;
  const server = await startServer(t, { leaseMs, heartbeatIntervalMs: 250, sweepIntervalMs: 100, retryBackoffBaseMs: 100 });
  const repoDir = await prepareAdaptorRepo(t);
  const workloops = 'fast_lane:1 manual>*:3';

  const doomed = spawnWorker(t, { lightningUrl: server.workerUrl, workloops, repoDir });
  const doomedId = await doomed.workerId();
  await doomed.waitForLog('joined worker:queue');

  // Long enough that every first attempt is still running at the kill, whatever the machine's load: a run
  // that ended before the last one started would never be seen with the other three as 'started'
  // (under CI's parallel test files, four threads booting on PostgreSQL took over 10 s).
  const holdUntil = Date.now() + 25_000;
  const submit = (queue: string, maxAttempts: number) => submitRun(server, { queue, max_attempts: maxAttempts, plan: fixturePlan(HOLD), input: { holdUntil } });
  // The wildcard lane is filled before the fast_lane run is queued. The `*` of `manual>*` takes runs of
  // any queue, fast_lane's too (docs/lanes.md): queued together, the fast_lane run goes to whichever lane's
  // claim reads it first, and when that is the wildcard lane the default run is left with no free lane on
  // this worker (the fast lane is strict) and never starts. On PostgreSQL a claim's statements run one
  // after another while submissions commit, so a wildcard claim sent before the runs existed often took
  // both manual runs and the fast_lane one, and the fast lane's claim, queued behind it, found nothing.
  const manualRuns = await Promise.all([submit('manual', 2), submit('manual', 2)]);
  const lastAttempt = await submit('default', 1);
  const wildcardRuns = [...manualRuns, lastAttempt];
  await waitForRuns(server, wildcardRuns, (run) => run.worker === doomedId && (run.state === 'claimed' || run.state === 'started'), {
    timeoutMs: 45_000,
    message: 'the manual and default runs claimed by the first worker',
  });
  // Now only the fast lane has a free slot.
  const fastRun = await submit('fast_lane', 2);
  const retried = [fastRun, ...manualRuns];
  const all = [...retried, lastAttempt];

  await waitForRuns(server, all, (run) => run.state === 'started' && run.worker === doomedId, {
    // Generous: four threads boot on a fresh engine, and on a loaded machine that takes a while.
    timeoutMs: 45_000,
    message: 'all four runs started on the first worker',
  });
  const laneOf = new Map(doomed.lines.filter((line) => line.msg === 'run claimed').map((line) => [String(line['runId']), line['lane']]));
  t.is(laneOf.get(fastRun), 'fast_lane:1', 'the fast_lane run is in flight on the fast lane');
  for (const id of wildcardRuns) t.is(laneOf.get(id), 'manual>*:3', `run ${id} is in flight on the wildcard lane`);
  const children = descendants(doomed.pid);
  t.true(children.length > 0, 'the worker has engine children');

  const killedAt = Date.now();
  doomed.child.kill('SIGKILL');
  t.is((await doomed.exited).signal, 'SIGKILL');
  // Orphaned children would keep executing the first attempts alongside the retries.
  await waitFor(() => children.every((pid) => !isAlive(pid)), { timeoutMs: 10_000, message: 'the killed worker’s engine children to exit' });

  const rescuer = spawnWorker(t, { lightningUrl: server.workerUrl, workloops, repoDir });
  const rescuerId = await rescuer.workerId();

  const runs = await waitAllTerminal(server, all);
  for (const run of runs) {
    const first = run.history[0];
    t.truthy(first, `run ${run.id} has a first attempt`);
    if (first === undefined) continue;
    t.is(first.worker, doomedId);
    t.is(first.state, 'lost', `run ${run.id}'s first attempt is lost`);
    t.is(first.error_type, 'LostError');
    // The heartbeat lease caught it, not claim time + run timeout + grace (minutes away).
    t.is(first.error_message, 'no heartbeat within the lease');
    t.true(Date.parse(first.finished_at ?? '') >= killedAt - leaseMs, 'lost after the beats stopped');
  }

  for (const id of retried) {
    const run = runs.find((view) => view.id === id)!;
    t.is(run.state, 'success', `run ${id} succeeded on its retry; its attempts: ${JSON.stringify(run.history)}`);
    t.is(run.attempts, 2);
    t.is(run.history.length, 2);
    const [first, second] = run.history;
    t.is(second?.worker, rescuerId);
    t.is(second?.state, 'success');
    // Attempts never overlap: the first had ended before the second was handed out.
    t.true(Date.parse(first?.finished_at ?? '') <= Date.parse(second?.claimed_at ?? ''), `attempts of ${id} do not overlap`);
    t.is(run.steps.filter((step) => step.reason === 'success').length, 1, 'one successful step, from the retry');
  }

  const dead = runs.find((view) => view.id === lastAttempt)!;
  t.is(dead.state, 'lost', 'a run without an attempt left stays lost');
  t.is(dead.history.length, 1);

  // The server handed nothing else to the first worker after the kill.
  const rescuedAttempts = runs.flatMap((run) => run.history.slice(1));
  t.true(rescuedAttempts.every((attempt) => attempt.worker === rescuerId));
});
