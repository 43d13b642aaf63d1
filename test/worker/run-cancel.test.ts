/**
 * The `run_cancel` extension end to end: the real server, a worker with the
 * real engine, a job that never ends. Cancelling it through the API ends it
 * in the worker at once (the thread is killed, the slot is free again) and
 * the worker reports it `cancel`, long before any timeout would.
 */
import test from 'ava';
import { FIXTURE } from '../reliability/process-cluster.ts';
import { api, startServer, submitRun, waitFor } from '../server/helpers.ts';
import { startEngineWorker } from './helpers.ts';

const forever = {
  triggers: [{ id: 't', type: 'webhook' }],
  jobs: [{ id: 'job-1', adaptor: FIXTURE, body: 'fn(state => { console.log("started"); return new Promise(() => {}); })' }],
  edges: [{ id: 'e', source_trigger_id: 't', target_job_id: 'job-1', condition: 'always' }],
  options: { run_timeout_ms: 120_000 },
};

test('a run cancelled through the API is ended by its worker at once and reported cancel', async (t) => {
  const server = await startServer(t);
  const worker = await startEngineWorker(t, server.workerUrl, { messageTimeoutMs: 60_000 });
  const id = await submitRun(server, { plan: forever });
  await waitFor(
    async () => {
      const { body } = await api<{ logs: Array<{ message: unknown }> }>(server, 'GET', `/api/runs/${id}/logs`);
      return body.logs.some((line) => JSON.stringify(line.message).includes('started'));
    },
    { timeoutMs: 30_000, message: 'the job to start' },
  );
  t.deepEqual(worker.activeRunIds, [id]);

  const cancelledAt = performance.now();
  t.is((await api(server, 'POST', `/api/runs/${id}/cancel`)).status, 200);
  // The slot is free once the engine settled the run and the worker reported it.
  await waitFor(() => worker.activeRunIds.length === 0, { timeoutMs: 10_000, intervalMs: 2, message: 'the worker to end the run' });
  t.log(`cancel → run ended in the worker: ${(performance.now() - cancelledAt).toFixed(1)} ms`);

  const metrics = await fetch(`http://127.0.0.1:${worker.healthPort}/metrics`).then((r) => r.text());
  t.regex(metrics, /lanes_worker_runs_total\{[^}]*reason="cancel"[^}]*\} 1/);
  // The run reached its thread before the cancel: both legs before run:start were measured once.
  t.regex(metrics, /lanes_worker_run_start_phase_seconds_count\{[^}]*phase="claim_to_dispatch"[^}]*\} 1/);
  t.regex(metrics, /lanes_worker_run_start_phase_seconds_count\{[^}]*phase="dispatch_to_start"[^}]*\} 1/);
  const { body } = await api<{ state: string; error_type: string }>(server, 'GET', `/api/runs/${id}`);
  t.is(body.state, 'cancelled');

  // The lane claims again: a second run on the same single slot succeeds.
  const next = await submitRun(server, { plan: { ...forever, jobs: [{ ...forever.jobs[0], body: 'fn(state => state)' }] } });
  await waitFor(
    async () => {
      const { body: run } = await api<{ state: string }>(server, 'GET', `/api/runs/${next}`);
      return run.state === 'success';
    },
    { timeoutMs: 30_000, message: 'the next run to succeed' },
  );
});
