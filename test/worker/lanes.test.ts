/**
 * Lanes against the real server: each lane claims for its own queue chain,
 * so a saturated lane never blocks a dedicated one.
 */
import test from 'ava';
import type { LanesServer } from '../../src/server/index.ts';
import { api, startServer, submitRun, waitFor } from '../server/helpers.ts';
import { FakeExecutor, startWorker, testConfig } from './helpers.ts';

const holdPlan = {
  triggers: [{ id: 'trigger', type: 'webhook' }],
  jobs: [{ id: 'job-1', body: 'hold', adaptor: '@openfn/language-common@latest' }],
  edges: [{ id: 'e1', source_trigger_id: 'trigger', target_job_id: 'job-1', condition: 'always' }],
};

async function stateOf(server: LanesServer, id: string): Promise<string> {
  const { body } = await api<{ state: string }>(server, 'GET', `/api/runs/${id}`);
  return body.state;
}

function waitForState(server: LanesServer, id: string, state: string): Promise<unknown> {
  return waitFor(async () => (await stateOf(server, id)) === state, { message: `run ${id} to be ${state}` });
}

test('fast_lane:1 runs a fast_lane run at once while manual>*:2 is full of long runs', async (t) => {
  const server = await startServer(t);
  const executor = new FakeExecutor();
  await startWorker(t, { executor, config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'fast_lane:1 manual>*:2' }) });
  const long = [await submitRun(server, { queue: 'manual', plan: holdPlan }), await submitRun(server, { queue: 'manual', plan: holdPlan })];
  await waitFor(() => executor.heldRunIds.length === 2, { message: 'the manual lane to be full' });
  const waiting = await submitRun(server, { queue: 'manual', plan: holdPlan });

  const fast = await submitRun(server, { queue: 'fast_lane' });
  await waitForState(server, fast, 'success');

  for (const id of long) t.is(await stateOf(server, id), 'started', 'the long runs are still running');
  t.is(await stateOf(server, waiting), 'available', 'the strict fast lane did not take a manual run');
  // The engine hands the pinned lane's runs a booted child first (docs/engine.md, "Pool").
  const urgent = new Map(executor.requests.map((request) => [request.runId, request.urgent]));
  t.is(urgent.get(fast), true, 'a run of a lane that pins its queues is urgent');
  for (const id of long) t.is(urgent.get(id), false, 'a run of a wildcard lane is not');
  executor.releaseAll();
  await waitForState(server, waiting, 'started');
  executor.releaseAll();
  await waitForState(server, waiting, 'success');
});

test('a strict lane never takes another queue’s run', async (t) => {
  const server = await startServer(t);
  const executor = new FakeExecutor();
  await startWorker(t, { executor, config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'fast_lane:1' }) });
  const others = [await submitRun(server, { queue: 'default' }), await submitRun(server, { queue: 'manual' })];
  const fast = await submitRun(server, { queue: 'fast_lane' });
  await waitForState(server, fast, 'success');
  const second = await submitRun(server, { queue: 'fast_lane' });
  await waitForState(server, second, 'success');
  for (const id of others) t.is(await stateOf(server, id), 'available');
  t.deepEqual(
    executor.requests.map((request) => request.runId),
    [fast, second],
  );
});

test('a wildcard lane takes its named queue first, then any other', async (t) => {
  const server = await startServer(t);
  // Submitted before any worker: the default run is the older one.
  const older = await submitRun(server, { queue: 'default' });
  const named = await submitRun(server, { queue: 'manual' });
  const executor = new FakeExecutor();
  await startWorker(t, { executor, config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'manual>*:1' }) });
  await waitForState(server, older, 'success');
  t.deepEqual(
    executor.requests.map((request) => request.runId),
    [named, older],
  );
});

test('a worker given the server public key verifies run tokens and runs them', async (t) => {
  const server = await startServer(t);
  const executor = new FakeExecutor();
  await startWorker(t, { executor, config: testConfig({ lightningUrl: server.workerUrl, lightningPublicKey: server.publicKeyPem }) });
  const id = await submitRun(server, {});
  await waitForState(server, id, 'success');
  t.is(executor.requests.length, 1);
});

test('a worker with the wrong public key refuses the run without executing it', async (t) => {
  const server = await startServer(t);
  const other = await startServer(t);
  const executor = new FakeExecutor();
  const worker = await startWorker(t, { executor, config: testConfig({ lightningUrl: server.workerUrl, lightningPublicKey: other.publicKeyPem, workloopsText: 'default:1' }) });
  const id = await submitRun(server, { queue: 'default' });
  await waitForState(server, id, 'claimed');
  // The slot is freed: the lane is claiming or backing off again, not holding the refused run.
  await waitFor(() => worker.lanes[0]?.active === 0, { message: 'the slot to be freed' });
  t.is(executor.requests.length, 0);
});
