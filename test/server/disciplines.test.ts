import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import test from 'ava';
import { LanesServer } from '../../src/server/index.ts';
import { api, claim, claimedRun, completeRunHappily, connectWorker, disconnect, joinQueue, joinRun, nextPush, push, simplePlan, startServer, submitRun, TEST_API_TOKEN, TEST_SECRET, testLogger, waitFor } from './helpers.ts';

const ts = () => String(Date.now() * 1000);

test('a heartbeating run whose beats stop is lost, retried after a backoff, and keeps its history', async (t) => {
  const server = await startServer(t, { leaseMs: 300, retryBackoffBaseMs: 100, workAvailableDebounceMs: 0 });
  const runId = await submitRun(server, { max_attempts: 2 });
  const first = await connectWorker(t, server, { workerId: 'first' });
  const { channel: queue1 } = await joinQueue(first);
  const [claimed] = await claim(queue1, ['*']);
  if (!claimed) return t.fail();
  const run = await joinRun(first, claimed);
  t.is((await push(run, 'run:start', { timestamp: ts() })).status, 'ok');
  t.is((await push(run, 'run:heartbeat', { timestamp: ts() })).status, 'ok');
  const second = await connectWorker(t, server, { workerId: 'second' });
  const { channel: queue2 } = await joinQueue(second);
  const woken = nextPush(queue2, 'work-available', 5_000);
  // The worker vanishes: no more heartbeats.
  await disconnect(first);
  await woken;
  const requeued = await api(server, 'GET', `/api/runs/${runId}`);
  t.is(requeued.body['state'], 'available');
  t.is(requeued.body['attempts'], 1);
  const [retry] = await claim(queue2, ['*']);
  t.is(retry?.id, runId);
  if (!retry) return;
  // The old token belongs to the lost attempt.
  t.not(retry.token, claimed.token);
  const runAgain = await joinRun(second, retry);
  await completeRunHappily(runAgain, runId);
  const detail = await api(server, 'GET', `/api/runs/${runId}`);
  t.is(detail.body['state'], 'success');
  t.is(detail.body['attempts'], 2);
  t.false(detail.body['dead_letter']);
  const history = detail.body['history'] as Array<Record<string, unknown>>;
  t.deepEqual(history.map((h) => [h['attempt'], h['worker'], h['state'], h['error_type']]), [
    [1, 'first', 'lost', 'LostError'],
    [2, 'second', 'success', null],
  ]);
  const metrics = await api<string>(server, 'GET', '/metrics');
  t.regex(metrics.body, /lanes_runs_lost_total\{queue="default"\} 1/);
  t.regex(metrics.body, /lanes_runs_retried_total\{queue="default"\} 1/);
});

test('a run that keeps beating is never lost, however long it runs within its timeout', async (t) => {
  // The lease leaves room for a busy machine (tests run in parallel); the loop outlasts it twice over.
  const server = await startServer(t, { leaseMs: 400 });
  const { runId, run } = await claimedRun(t, server);
  await push(run, 'run:start', { timestamp: ts() });
  const until = Date.now() + 900;
  while (Date.now() < until) {
    t.is((await push(run, 'run:heartbeat', { timestamp: ts() })).status, 'ok');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.is((await api(server, 'GET', `/api/runs/${runId}`)).body['state'], 'started');
});

test('a run on a worker that never beats is lost after its timeout plus grace, and with no attempts left it is a dead letter', async (t) => {
  const server = await startServer(t, { graceMs: 0 });
  const { runId, run } = await claimedRun(t, server, { plan: { jobs: [{ id: 'j', body: 'x', adaptor: 'a' }], options: { run_timeout_ms: 300 } } });
  await push(run, 'run:start', { timestamp: ts() });
  await waitFor(async () => (await api(server, 'GET', `/api/runs/${runId}`)).body['state'] === 'lost', { message: 'run lost' });
  const detail = await api(server, 'GET', `/api/runs/${runId}`);
  t.true(detail.body['dead_letter']);
  t.deepEqual(await push(run, 'run:complete', { reason: 'success', error_type: null, error_message: null }), {
    status: 'error',
    response: { state: ['already in completed state'] },
  });
  const dead = await api<{ runs: Array<{ id: string }> }>(server, 'GET', '/api/runs?dead_letter=true');
  t.deepEqual(dead.body.runs.map((r) => r.id), [runId]);
});

test('a crashed run is retried while attempts remain', async (t) => {
  const server = await startServer(t, { retryBackoffBaseMs: 0, workAvailableDebounceMs: 0 });
  const runId = await submitRun(server, { max_attempts: 2 });
  const socket = await connectWorker(t, server);
  const { channel: queue } = await joinQueue(socket);
  for (let attempt = 1; attempt <= 2; attempt += 1) {
    const [claimed] = await claim(queue, ['*']);
    t.is(claimed?.id, runId);
    if (!claimed) return;
    const run = await joinRun(socket, claimed);
    await push(run, 'run:start', { timestamp: ts() });
    t.is((await push(run, 'run:complete', { reason: 'crash', error_type: 'ProcessCrashError', error_message: 'boom' })).status, 'ok');
    await push(run, 'phx_leave');
  }
  const detail = await api(server, 'GET', `/api/runs/${runId}`);
  t.is(detail.body['state'], 'crashed');
  t.is(detail.body['attempts'], 2);
  t.true(detail.body['dead_letter']);
  t.deepEqual(await claim(queue, ['*']), []);
});

test('a run on a file database survives a restart with its steps, and the key is kept beside the database', async (t) => {
  const dir = await mkdtemp(joinPath(tmpdir(), 'lanes-server-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const dbPath = joinPath(dir, 'lanes.db');
  const options = { port: 0, dbPath, secret: TEST_SECRET, apiTokens: [TEST_API_TOKEN], logger: testLogger() };
  const first = await LanesServer.create(options);
  t.teardown(() => first.stop());
  await first.start();
  const done = await submitRun(first);
  const waiting = await submitRun(first, { queue: 'later', priority: 3, idempotency_key: 'k1' });
  const socket = await connectWorker(t, first);
  const { channel: queue } = await joinQueue(socket);
  const [claimed] = await claim(queue, ['default']);
  if (!claimed) return t.fail();
  await completeRunHappily(await joinRun(socket, claimed), done);
  await first.stop();
  t.is((await stat(`${dbPath}.key.pem`)).mode & 0o777, 0o600);

  const second = await LanesServer.create(options);
  t.teardown(() => second.stop());
  await second.start();
  t.is(second.publicKeyPem, first.publicKeyPem);
  const detail = await api(second, 'GET', `/api/runs/${done}`);
  t.is(detail.body['state'], 'success');
  t.is((detail.body['steps'] as unknown[]).length, 1);
  const kept = await api(second, 'GET', `/api/runs/${waiting}`);
  t.is(kept.body['state'], 'available');
  t.is(kept.body['priority'], 3);
  // The same request again: the key survived the restart, so it answers with the run already made.
  const again = await api(second, 'POST', '/api/runs', { queue: 'later', priority: 3, idempotency_key: 'k1', plan: simplePlan() });
  t.is(again.status, 200);
  t.is(again.body['id'], waiting);
  const socket2 = await connectWorker(t, second);
  const { channel: queue2 } = await joinQueue(socket2);
  t.deepEqual((await claim(queue2, ['later'])).map((r) => r.id), [waiting]);
});

test('the workers table takes a new worker name at once, though claims mark last-seen at most once a second', async (t) => {
  const dir = await mkdtemp(joinPath(tmpdir(), 'lanes-server-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const dbPath = joinPath(dir, 'lanes.db');
  const server = await startServer(t, { dbPath });
  const socket = await connectWorker(t, server);
  const { channel } = await joinQueue(socket);
  const reader = new DatabaseSync(dbPath, { readOnly: true });
  t.teardown(() => reader.close());
  const row = () => reader.prepare('SELECT name, last_seen_at FROM workers').get() as { name: string | null; last_seen_at: number };
  const joined = row();
  t.is(joined.name, null);
  await claim(channel, ['manual'], 1, 'first-name');
  t.is(row().name, 'first-name', 'a new name is written at once');
  const named = row();
  await claim(channel, ['manual'], 1, 'first-name');
  await claim(channel, ['manual'], 1, 'second-name');
  t.is(row().name, 'second-name');
  t.true(row().last_seen_at >= named.last_seen_at);
});
