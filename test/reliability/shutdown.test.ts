/**
 * Issue 7, point 5: SIGTERM to a real `lanes worker` process during a burst
 * of claims loses nothing. Every run either finished on that worker, was
 * killed and reported `kill`/`ShutdownError`, or was never claimed (still
 * `available`, then picked up by another worker). The process exits 0.
 */
import test from 'ava';
import { startServer, submitRun } from '../server/helpers.ts';
import { fixturePlan, getRun, prepareAdaptorRepo, spawnWorker, waitAllTerminal } from './process-cluster.ts';

/** Sleeps until `state.holdUntil` (epoch ms), so some runs outlive the shutdown timeout and later ones end at once. */
const HOLD = 'fn(state => new Promise(resolve => setTimeout(() => resolve(state), Math.max(0, state.holdUntil - Date.now()))))';
const QUICK = 'fn(state => state)';

test('SIGTERM during a burst of claims: every run finished, was reported killed by the shutdown, or stayed available for another worker', async (t) => {
  // Leases far longer than the test: a run the draining worker dropped would stay claimed and fail the checks.
  const server = await startServer(t, { leaseMs: 60_000, heartbeatIntervalMs: 500 });
  const repoDir = await prepareAdaptorRepo(t);
  const workloops = 'fast_lane:1 manual>*:3';
  const draining = spawnWorker(t, { lightningUrl: server.workerUrl, workloops, repoDir, extraArgs: ['--shutdown-timeout-seconds', '1'] });
  const drainingId = await draining.workerId();
  await draining.waitForLog('joined worker:queue');

  const holdUntil = Date.now() + 8_000;
  const ids = await Promise.all(
    Array.from({ length: 16 }, (_, i) =>
      submitRun(server, {
        queue: i % 4 === 0 ? 'fast_lane' : 'manual',
        plan: fixturePlan(i % 3 === 0 ? HOLD : QUICK),
        input: { holdUntil },
      }),
    ),
  );
  // Mid-burst: the first runs are on the worker, most are still queued and the lanes are claiming.
  await draining.waitForLog('run claimed');
  draining.child.kill('SIGTERM');
  const exit = await draining.exited;
  t.deepEqual(exit, { code: 0, signal: null }, 'the worker exits 0');

  const afterDrain = await Promise.all(ids.map((id) => getRun(server, id)));
  const claimedByDraining = afterDrain.filter((run) => run.history.length > 0);
  t.true(claimedByDraining.length > 0, 'the draining worker had claimed runs');
  for (const run of afterDrain) {
    if (run.state === 'available') {
      t.is(run.history.length, 0, `available run ${run.id} was never claimed`);
      continue;
    }
    t.is(run.worker, drainingId);
    t.true(
      run.state === 'success' || (run.state === 'killed' && run.reason === 'kill' && run.error_type === 'ShutdownError'),
      `run ${run.id} finished or was reported killed by the shutdown: ${run.state} ${run.error_type ?? ''}`,
    );
  }
  const left = afterDrain.filter((run) => run.state === 'available');
  const counts: Record<string, number> = {};
  for (const run of afterDrain) counts[run.state] = (counts[run.state] ?? 0) + 1;
  t.log('after the drain', counts);

  // Whatever was never claimed is taken by another worker.
  if (left.length > 0) spawnWorker(t, { lightningUrl: server.workerUrl, workloops, repoDir });
  const final = await waitAllTerminal(server, ids, 30_000);
  for (const run of final) {
    t.true(['success', 'killed'].includes(run.state), `run ${run.id} ends success or killed, never lost: ${run.state}`);
    t.is(run.history.length, 1, `run ${run.id} had exactly one attempt`);
  }
  t.true(
    final.filter((run) => left.some((queued) => queued.id === run.id)).every((run) => run.state === 'success' && run.worker !== drainingId),
    'the runs left available ran on the second worker',
  );
});
