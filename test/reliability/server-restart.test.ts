/**
 * Issue 7, point 2: the server is restarted mid-run on the same database
 * (a SQLite file, or PostgreSQL in on-postgres/) and port, and stays down
 * longer than its heartbeat lease. The worker
 * reconnects, rejoins its run channels with the tokens it holds, and its
 * events (including those that timed out while the server was away and were
 * resent under `idempotent_events`) are accepted once: no duplicate step or
 * log rows. A run whose worker never comes back does not stay `started`: it
 * is lost one lease after the restart.
 *
 * The worker talks through a frame-recording proxy (slow-server-proxy.ts)
 * only to count what it sent; the proxy holds nothing here.
 */
import test from 'ava';
import { join as joinPath } from 'node:path';
import pino from 'pino';
import { RUN_COMPLETE, STEP_COMPLETE, runTopic } from '../../src/protocol/events.ts';
import { LanesServer } from '../../src/server/index.ts';
import { tempDir } from '../engine/helpers.ts';
import { TEST_API_TOKEN, TEST_SECRET, api, claim, connectWorker, joinQueue, joinRun, push, simplePlan, submitRun, testLogger, testStoreKind, waitFor } from '../server/helpers.ts';
import { postgresDatabase } from '../server/store-harness.ts';
import { FakeExecutor, startWorker, testConfig } from '../worker/helpers.ts';
import { getRun, waitAllTerminal } from './process-cluster.ts';
import { SlowServerProxy } from './slow-server-proxy.ts';

const LEASE_MS = 1_000;

async function startOn(t: Parameters<typeof startWorker>[0], dbPath: string, port: number): Promise<LanesServer> {
  const server = await LanesServer.create({
    port,
    dbPath,
    secret: TEST_SECRET,
    apiTokens: [TEST_API_TOKEN],
    logger: testLogger(),
    sweepIntervalMs: 50,
    leaseMs: LEASE_MS,
    heartbeatIntervalMs: 200,
  });
  t.teardown(() => server.stop());
  await server.start();
  return server;
}

test('a server restarted on the same database, down longer than the lease: workers rejoin and finish, nothing is duplicated, nothing stays started', async (t) => {
  const dir = await tempDir(t, 'lanes-restart-');
  // The same SQLite file, or (test/reliability/on-postgres/) the same PostgreSQL database.
  const dbPath = testStoreKind() === 'postgres' ? await postgresDatabase() : joinPath(dir, 'lanes.db');
  const first = await startOn(t, dbPath, 0);
  const port = first.port;

  // A worker that will never come back: it claims, starts and beats, then vanishes with the server.
  const ghostId = await submitRun(first, { queue: 'ghost' });
  const ghostSocket = await connectWorker(t, first, { workerId: 'ghost' });
  const { channel: ghostQueue } = await joinQueue(ghostSocket, { ghost: 1 });
  const [ghostClaim] = await claim(ghostQueue, ['ghost']);
  if (ghostClaim === undefined) throw new Error('the ghost claimed nothing');
  const ghostRun = await joinRun(ghostSocket, ghostClaim);
  t.is((await push(ghostRun, 'run:start', { timestamp: String(Date.now() * 1000) })).status, 'ok');
  t.is((await push(ghostRun, 'run:heartbeat', { timestamp: String(Date.now() * 1000) })).status, 'ok');

  const proxy = await SlowServerProxy.start(t, port);
  const executor = new FakeExecutor();
  const warnings: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>) });
  const worker = await startWorker(t, {
    logger,
    // A message timeout shorter than the outage: events pushed meanwhile time out and are resent.
    config: testConfig({ lightningUrl: proxy.workerUrl, workloopsText: 'manual>*:2', messageTimeoutMs: 1_000 }),
    executor,
  });
  const [early, late] = await Promise.all([submitRun(first, { plan: simplePlan('hold') }), submitRun(first, { plan: simplePlan('hold') })]);
  // Generous: on a loaded machine (on PostgreSQL under the parallel suite) a join and run:start took over 5 s.
  await waitFor(() => executor.heldRunIds.includes(early) && executor.heldRunIds.includes(late), { timeoutMs: 30_000, message: 'both runs executing' });
  await waitFor(async () => (await getRun(first, early)).state === 'started' && (await getRun(first, late)).state === 'started', { timeoutMs: 30_000, message: 'both runs started' });

  const stoppedAt = Date.now();
  await first.stop();
  // One run finishes while no server listens: its events wait in the worker and time out.
  executor.release(early);
  await waitFor(() => worker.connectionState !== 'joined', { message: 'the worker to notice' });
  // Down for longer than a lease: without renewal at start, every run in flight would be lost at once.
  await waitFor(() => Date.now() > stoppedAt + LEASE_MS * 1.5, { timeoutMs: 10_000, message: 'the lease to lapse' });

  const second = await startOn(t, dbPath, port);
  await waitFor(() => worker.connectionState === 'joined', { timeoutMs: 10_000, message: 'the worker to rejoin' });
  executor.release(late);

  const [earlyRun, lateRun] = await waitAllTerminal(second, [early, late], 20_000);
  for (const run of [earlyRun, lateRun]) {
    t.is(run?.state, 'success', `run ${run?.id} finished on the restarted server`);
    t.is(run?.attempts, 1, 'its lease was honoured: no second attempt');
    t.is(run?.steps.length, 1, 'one step row');
    const logs = await api<{ logs: unknown[] }>(second, 'GET', `/api/runs/${run?.id ?? ''}/logs`);
    t.is(logs.body.logs.length, 2, 'each log line stored once');
  }
  // The early run's events got no reply during the outage (lost with the connection, or timed out while
  // buffered: phoenix drops a buffered push once it timed out) and were pushed again; the server stored each once.
  t.true(
    warnings.some((line) => line['msg'] === 'run event got no reply; resending (server is idempotent)' && line['runId'] === early),
    'an event of the early run was resent',
  );
  t.is(proxy.sentEvents(STEP_COMPLETE, runTopic(early)).length + proxy.sentEvents(RUN_COMPLETE, runTopic(early)).length >= 2, true);
  t.true(proxy.sentEvents('phx_join', runTopic(early)).length >= 2, 'the run channel was rejoined');

  // The ghost's run is lost one lease after the restart, not left started for ever (nor lost before workers could return).
  const [ghost] = await waitAllTerminal(second, [ghostId], 10_000);
  t.is(ghost?.state, 'lost');
  t.is(ghost?.history[0]?.error_message, 'no heartbeat within the lease');
  const started = await api<{ runs: unknown[] }>(second, 'GET', '/api/runs?state=started');
  t.deepEqual(started.body.runs, []);
});
