/**
 * The worker's life against the real server: reconnecting after the socket
 * drops (runs in flight included), and a graceful stop that drains.
 */
import test from 'ava';
import type { LanesServer } from '../../src/server/index.ts';
import { api, startServer, submitRun, testLogger, waitFor } from '../server/helpers.ts';
import { Worker } from '../../src/worker/index.ts';
import { InvalidTransitionError } from '../../src/state-machine.ts';
import { DropProxy, FakeExecutor, startWorker, testConfig } from './helpers.ts';

const holdPlan = {
  triggers: [{ id: 'trigger', type: 'webhook' }],
  jobs: [{ id: 'job-1', body: 'hold', adaptor: '@openfn/language-common@latest' }],
  edges: [{ id: 'e1', source_trigger_id: 'trigger', target_job_id: 'job-1', condition: 'always' }],
};

async function runOf(server: LanesServer, id: string): Promise<{ state: string; error_type: string | null }> {
  return (await api<{ state: string; error_type: string | null }>(server, 'GET', `/api/runs/${id}`)).body;
}

function waitForState(server: LanesServer, id: string, state: string, timeoutMs?: number): Promise<unknown> {
  return waitFor(async () => (await runOf(server, id)).state === state, { message: `run ${id} to be ${state}`, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
}

test('after the server drops the socket the worker reconnects, rejoins, finishes its run and claims again', async (t) => {
  const server = await startServer(t);
  const proxy = await DropProxy.start(t, server.port);
  const executor = new FakeExecutor();
  const worker = await startWorker(t, { executor, config: testConfig({ lightningUrl: `ws://127.0.0.1:${proxy.port}/worker` }) });
  await worker.whenConnected();

  const inFlight = await submitRun(server, { plan: holdPlan });
  await waitFor(() => executor.heldRunIds.includes(inFlight), { message: 'the run to start' });
  // Its step:start answered before the drop: an event whose reply the drop loses is resent at the rejoin
  // (the next test), which is not what this test is about.
  await waitFor(async () => ((await api<{ steps: unknown[] }>(server, 'GET', `/api/runs/${inFlight}`)).body.steps.length > 0 ? true : undefined), { message: 'its step:start to be stored' });

  let sawDisconnect = false;
  proxy.dropAll();
  await waitFor(
    () => {
      if (worker.connectionState !== 'joined') sawDisconnect = true;
      return sawDisconnect && worker.connectionState === 'joined';
    },
    { message: 'the worker to reconnect' },
  );

  executor.release(inFlight);
  // An event of the run in flight when the socket dropped (a heartbeat, a log line) is resent at the rejoin.
  await waitForState(server, inFlight, 'success', 15_000);
  const after = await submitRun(server, {});
  await waitForState(server, after, 'success');
  const metrics = await (await fetch(`http://127.0.0.1:${worker.healthPort}/metrics`)).text();
  t.regex(metrics, /lanes_worker_reconnects_total\{[^}]*\} [1-9]/);
});

test('an event whose reply a dropped connection lost is resent once the channel rejoins, not after its message timeout', async (t) => {
  const server = await startServer(t);
  const proxy = await DropProxy.start(t, server.port);
  const executor = new FakeExecutor();
  const worker = await startWorker(t, { executor, config: testConfig({ lightningUrl: `ws://127.0.0.1:${proxy.port}/worker`, messageTimeoutMs: 60_000 }) });
  await worker.whenConnected();
  const inFlight = await submitRun(server, { plan: holdPlan });
  await waitFor(() => executor.heldRunIds.includes(inFlight), { message: 'the run to start' });
  await waitFor(async () => ((await api<{ steps: unknown[] }>(server, 'GET', `/api/runs/${inFlight}`)).body.steps.length > 0 ? true : undefined), { message: 'its step:start to be stored' });
  // The server's replies stop reaching the worker; the run ends, and the reply of the event it pushed
  // then (step:complete, or one still in flight before it) is lost. Everything after waits behind it.
  proxy.holdReplies();
  executor.release(inFlight);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const droppedAt = Date.now();
  proxy.dropAll();
  // Its reply lost, run:complete waits behind it: within a 60 s message timeout only the resend at the rejoin ends the run.
  await waitForState(server, inFlight, 'success', 20_000);
  t.true(Date.now() - droppedAt < 20_000);
  const run = await api<{ steps: unknown[] }>(server, 'GET', `/api/runs/${inFlight}`);
  t.is(run.body.steps.length, 1, 'the resent step:complete was taken once (idempotent_events)');
});

test('stop() drains: no new claims, runs finish, those past the shutdown timeout are killed with ShutdownError', async (t) => {
  const server = await startServer(t);
  const executor = new FakeExecutor();
  const worker = await startWorker(t, { executor, config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'manual>*:2', shutdownTimeoutMs: 500 }) });
  const finishing = await submitRun(server, { plan: holdPlan });
  const stuck = await submitRun(server, { plan: holdPlan });
  await waitFor(() => executor.heldRunIds.length === 2, { message: 'both runs to start' });

  const stopping = worker.stop();
  t.is(worker.stop(), stopping, 'stop() returns the promise in flight');
  await waitFor(() => worker.state === 'draining', { message: 'the worker to drain' });
  const notClaimed = await submitRun(server, {});
  executor.release(finishing);
  await waitForState(server, finishing, 'success');
  await stopping;

  t.is(worker.state, 'stopped');
  const killed = await runOf(server, stuck);
  t.is(killed.state, 'killed');
  t.is(killed.error_type, 'ShutdownError');
  t.is((await runOf(server, notClaimed)).state, 'available', 'a draining worker claims nothing');
  await t.throwsAsync(fetch(`http://127.0.0.1:${worker.healthPort}/livez`), undefined, 'the health port is closed');
});

test('a stop() asked while the worker starts drains once the start is done; start() and stop() again return the promises in flight', async (t) => {
  const server = await startServer(t);
  const worker = await Worker.create({ logger: testLogger(), executor: new FakeExecutor(), healthHost: '127.0.0.1', config: testConfig({ lightningUrl: server.workerUrl }) });
  t.teardown(() => worker.stop({ force: true }));
  const started = worker.start();
  t.is(worker.state, 'starting');
  t.is(worker.start(), started, 'a second start() is the start in flight');
  const stopping = worker.stop();
  t.is(worker.stop(), stopping, 'a second stop() is the stop in flight');
  await started;
  await stopping;
  t.is(worker.state, 'stopped');
  t.is(worker.start(), started, 'start() after the stop answers with the start that was made');
});

test('a worker stopped before it started cannot start: start() throws InvalidTransitionError', async (t) => {
  const worker = await Worker.create({ logger: testLogger(), executor: new FakeExecutor(), healthHost: '127.0.0.1', config: testConfig({ lightningUrl: 'ws://127.0.0.1:1/worker' }) });
  await worker.stop();
  t.is(worker.state, 'stopped');
  t.throws(() => worker.start(), { instanceOf: InvalidTransitionError, message: 'worker: invalid transition stopped → starting' });
  t.is(worker.state, 'stopped');
});
