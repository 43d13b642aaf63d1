/**
 * The worker with the real engine (child processes, @openfn/runtime) against
 * the real server: what a user sees end to end.
 */
import test from 'ava';
import { fileURLToPath } from 'node:url';
import type { LanesServer } from '../../src/server/index.ts';
import { api, startServer, submitRun, waitFor } from '../server/helpers.ts';
import { tempDir } from '../engine/helpers.ts';
import { startWorker, testConfig } from './helpers.ts';

const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/adaptor/', import.meta.url));
const FIXTURE = '@openfn/language-lanesfixture@1.0.0';

interface RunView {
  state: string;
  error_type: string | null;
  steps: Array<{ job_id: string; reason: string; input_dataclip_id: string | null; output_dataclip_id: string | null }>;
  final_state: unknown;
}

function plan(bodies: string[]): Record<string, unknown> {
  const jobs = bodies.map((body, index) => ({ id: `job-${index + 1}`, body, adaptor: FIXTURE }));
  const edges = jobs.map((job, index) =>
    index === 0
      ? { id: 'e-t', source_trigger_id: 'trigger', target_job_id: job.id, condition: 'always' }
      : { id: `e-${index}`, source_job_id: jobs[index - 1]!.id, target_job_id: job.id, condition: 'on_job_success' },
  );
  return { triggers: [{ id: 'trigger', type: 'webhook' }], jobs, edges };
}

async function finished(server: LanesServer, id: string): Promise<RunView> {
  return waitFor(
    async () => {
      const { body } = await api<RunView>(server, 'GET', `/api/runs/${id}`);
      return ['success', 'failed', 'crashed', 'killed', 'cancelled', 'exception', 'lost'].includes(body.state) ? body : null;
    },
    { timeoutMs: 30_000, message: `run ${id} to finish` },
  );
}

test('a two-step run on real child processes reaches the server in order, then a drain kills a run that never ends', async (t) => {
  const server = await startServer(t);
  const repoDir = await tempDir(t, 'lanes-worker-repo-');
  const worker = await startWorker(t, {
    config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'manual>*:1', repoDir, shutdownTimeoutMs: 200 }),
    engine: { localAdaptors: { '@openfn/language-lanesfixture': FIXTURE_DIR }, repoDir },
  });

  const id = await submitRun(server, {
    plan: plan(['fn(state => { console.log("first"); return { ...state, data: { n: 1 } } })', 'fn(state => ({ ...state, data: { n: state.data.n + 1 } }))']),
    input: { data: { n: 0 } },
  });
  const run = await finished(server, id);
  t.is(run.state, 'success');
  t.deepEqual(
    run.steps.map((step) => [step.job_id, step.reason]),
    [
      ['job-1', 'success'],
      ['job-2', 'success'],
    ],
  );
  t.is(run.steps[1]?.input_dataclip_id, run.steps[0]?.output_dataclip_id);
  t.like(run.final_state as Record<string, unknown>, { data: { n: 2 } });
  const { body } = await api<{ logs: Array<{ message: unknown; source: string }> }>(server, 'GET', `/api/runs/${id}/logs`);
  t.true(JSON.stringify(body.logs).includes('first'), 'the job log reached the server');

  const endless = await submitRun(server, { plan: plan(['fn(() => new Promise(() => {}))']) });
  await waitFor(async () => (await api<RunView>(server, 'GET', `/api/runs/${endless}`)).body.state === 'started', { timeoutMs: 30_000 });
  await worker.stop();
  const killed = await finished(server, endless);
  t.is(killed.state, 'killed');
  t.is(killed.error_type, 'ShutdownError');
});
