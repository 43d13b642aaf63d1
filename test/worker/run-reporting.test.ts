import test from 'ava';
import { randomUUID } from 'node:crypto';
import { api, startServer, submitRun, waitFor } from '../server/helpers.ts';
import { FakeExecutor, startWorker, testConfig } from './helpers.ts';

interface RunView {
  state: string;
  reason: string | null;
  error_type: string | null;
  worker: string | null;
  steps: Array<{ id: string; job_id: string; reason: string | null; input_dataclip_id: string | null; output_dataclip_id: string | null; output_dataclip_error: string | null }>;
  final_state: unknown;
}

const twoJobPlan = (secondBody = 'fn(s => s)') => ({
  triggers: [{ id: 'trigger', type: 'webhook' }],
  jobs: [
    { id: 'job-1', body: 'fn(s => s)', adaptor: '@openfn/language-common@latest' },
    { id: 'job-2', body: secondBody, adaptor: '@openfn/language-common@latest' },
  ],
  edges: [
    { id: 'e1', source_trigger_id: 'trigger', target_job_id: 'job-1', condition: 'always' },
    { id: 'e2', source_job_id: 'job-1', target_job_id: 'job-2', condition: 'on_job_success' },
  ],
});

async function finishedRun(server: Parameters<typeof api>[0], id: string): Promise<RunView> {
  return waitFor(
    async () => {
      const { body } = await api<RunView>(server, 'GET', `/api/runs/${id}`);
      return ['success', 'failed', 'crashed', 'killed', 'cancelled', 'exception', 'lost'].includes(body.state) ? body : null;
    },
    { message: `run ${id} to finish` },
  );
}

for (const batchLogs of [false, true]) {
  test(`a run's full event sequence lands in the server in order (batch logs ${batchLogs ? 'on' : 'off'})`, async (t) => {
    const server = await startServer(t);
    const executor = new FakeExecutor();
    const worker = await startWorker(t, { executor, workerId: 'worker-seq', config: testConfig({ lightningUrl: server.workerUrl, batchLogs }) });
    const id = await submitRun(server, { plan: twoJobPlan(), input: { hello: 'world' } });
    const run = await finishedRun(server, id);

    t.is(run.state, 'success');
    t.is(run.worker, worker.workerId);
    t.deepEqual(executor.requests[0]?.input, { hello: 'world' }, 'the input came over fetch:dataclip');
    t.deepEqual(
      run.steps.map((step) => [step.job_id, step.reason]),
      [
        ['job-1', 'success'],
        ['job-2', 'success'],
      ],
    );
    const [first, second] = run.steps;
    t.truthy(first?.input_dataclip_id, 'the first step reads the run input');
    t.truthy(first?.output_dataclip_id);
    t.is(second?.input_dataclip_id, first?.output_dataclip_id, 'the second step reads the first output');
    t.deepEqual(run.final_state, { hello: 'world', 'job-1': 'done', 'job-2': 'done' });

    const { body: logs } = await api<{ logs: Array<{ message: unknown }> }>(server, 'GET', `/api/runs/${id}/logs`);
    t.is(logs.logs.length, 4, 'every log line arrived once');
  });
}

test('a failing step ends the run failed, and an output over the limit is DATACLIP_TOO_LARGE', async (t) => {
  const server = await startServer(t);
  const worker = await startWorker(t, { executor: new FakeExecutor(), config: testConfig({ lightningUrl: server.workerUrl }) });
  const failing = await submitRun(server, { plan: twoJobPlan('fail') });
  const big = await submitRun(server, { plan: twoJobPlan('big') });
  const failed = await finishedRun(server, failing);
  t.is(failed.state, 'failed');
  t.is(failed.error_type, 'JobError');
  const tooLarge = await finishedRun(server, big);
  t.is(tooLarge.state, 'success');
  t.is(tooLarge.steps[1]?.output_dataclip_error, 'DATACLIP_TOO_LARGE');
  t.is(tooLarge.steps[1]?.output_dataclip_id, null);
  t.is(worker.state, 'running');
});

test('a plan the worker cannot use ends the run exception with PlanError', async (t) => {
  const server = await startServer(t);
  const executor = new FakeExecutor();
  await startWorker(t, { executor, config: testConfig({ lightningUrl: server.workerUrl }) });
  const plan = { starting_node_id: 't', triggers: [{ id: 't' }], jobs: [], edges: [] };
  // The server's API refuses a plan without jobs, naming the field...
  const refused = await api<{ field?: string }>(server, 'POST', '/api/runs', { plan });
  t.is(refused.status, 422);
  t.is(refused.body.field, 'plan.jobs');
  // ...so, as another server (Lightning) or a buggy one might, hand it out straight from the store:
  // the worker must refuse it on its own.
  const id = randomUUID();
  await server.store.insertRun({ id, queue: 'default', priority: 0, maxAttempts: 1, idempotencyKey: null, plan, inputJson: '{}', runTimeoutMs: 60_000, now: Date.now() });
  const run = await finishedRun(server, id);
  t.is(run.state, 'exception');
  t.is(run.error_type, 'PlanError');
  t.is(executor.requests.length, 0, 'the engine never saw it');
});

test('health: /livez, /readyz with the lanes, and /metrics', async (t) => {
  const server = await startServer(t);
  const worker = await startWorker(t, { executor: new FakeExecutor(), config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'fast_lane:1 manual>*:2' }) });
  const base = `http://127.0.0.1:${worker.healthPort}`;
  t.is((await fetch(`${base}/livez`)).status, 200);
  await worker.whenConnected();
  const ready = await fetch(`${base}/readyz`);
  t.is(ready.status, 200);
  const body = (await ready.json()) as { lanes: Array<{ id: string; capacity: number }> };
  t.deepEqual(
    body.lanes.map((lane) => [lane.id, lane.capacity]),
    [
      ['fast_lane:1', 1],
      ['manual>*:2', 2],
    ],
  );
  const id = await submitRun(server, {});
  await finishedRun(server, id);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  t.regex(metrics, /lanes_worker_lane_capacity\{[^}]*lane="manual>\*:2"[^}]*\} 2/);
  t.regex(metrics, /lanes_worker_runs_total\{[^}]*reason="success"[^}]*\} 1/);
  t.regex(metrics, /lanes_worker_claims_total\{[^}]*outcome="runs"/);
  t.regex(metrics, /lanes_worker_claim_duration_seconds_bucket/);
  t.regex(metrics, /lanes_worker_run_duration_seconds_bucket/);
  t.regex(metrics, /lanes_worker_reconnects_total/);

  const stopping = worker.stop();
  await waitFor(async () => (await fetch(`${base}/readyz`).catch(() => null))?.status !== 200, { message: 'readyz to stop being ready' });
  await stopping;
});
