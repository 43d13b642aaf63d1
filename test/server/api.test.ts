import test from 'ava';
import type { Channel } from 'phoenix';
import { api, claim, completeRunHappily, connectWorker, joinQueue, joinRun, push, simplePlan, startServer, submitRun, waitFor } from './helpers.ts';

test('submission validation answers 4xx {error, field, message} and stores nothing', async (t) => {
  const server = await startServer(t, { maxBodyBytes: 2_000 });
  const cases: Array<[unknown, string]> = [
    [{}, 'plan'],
    [{ plan: { jobs: [] } }, 'plan.jobs'],
    [{ plan: { jobs: [{ id: 'j', body: 1, adaptor: 'a' }] } }, 'plan.jobs[0].body'],
    [{ plan: { jobs: [{ id: 'j', body: 'x' }] } }, 'plan.jobs[0].adaptor'],
    [{ plan: { jobs: [{ id: 'j', body: 'x', adaptor: 'a' }], edges: [{ id: 'e', source_job_id: 'j', target_job_id: 'nope' }] } }, 'plan.edges[0].target_job_id'],
    [{ plan: simplePlan(), queue: 'bad queue!' }, 'queue'],
    [{ plan: simplePlan(), priority: 1.5 }, 'priority'],
    [{ plan: simplePlan(), max_attempts: 0 }, 'max_attempts'],
    [{ plan: simplePlan(), input: [1, 2] }, 'input'],
    [{ plan: { ...simplePlan(), options: { run_timeout_ms: -1 } } }, 'plan.options.run_timeout_ms'],
  ];
  for (const [body, field] of cases) {
    const result = await api(server, 'POST', '/api/runs', body);
    t.is(result.status, 422, field);
    t.is(result.body['error'], 'validation');
    t.is(result.body['field'], field);
    t.is(typeof result.body['message'], 'string');
  }
  const notJson = await api(server, 'POST', '/api/runs', '{"plan":');
  t.is(notJson.status, 400);
  t.is(notJson.body['error'], 'invalid_json');
  const tooBig = await api(server, 'POST', '/api/runs', { plan: simplePlan('x'.repeat(5_000)) });
  t.is(tooBig.status, 413);
  t.is((await api(server, 'POST', '/api/runs?wait=abc', { plan: simplePlan() })).body['field'], 'wait');
  t.is((await api(server, 'GET', '/api/runs?state=bogus')).status, 400);
  t.is((await api(server, 'GET', '/api/nothing')).status, 404);
  t.deepEqual((await api(server, 'GET', '/api/runs')).body, { runs: [] });
});

test('an idempotency key returns the existing run with 200', async (t) => {
  const server = await startServer(t);
  const first = await api(server, 'POST', '/api/runs', { plan: simplePlan(), idempotency_key: 'order-7' });
  t.is(first.status, 201);
  t.deepEqual(Object.keys(first.body).sort(), ['id', 'queue', 'state']);
  const second = await api(server, 'POST', '/api/runs', { plan: simplePlan(), idempotency_key: 'order-7' });
  t.is(second.status, 200);
  t.is(second.body['id'], first.body['id']);
  const listed = await api<{ runs: unknown[] }>(server, 'GET', '/api/runs');
  t.is(listed.body.runs.length, 1);
});

/** The request under test is stored concurrently: claim until it shows up, within a deadline. */
function claimSoon(queue: Channel) {
  return waitFor(async () => {
    const runs = await claim(queue, ['*']);
    return runs.length > 0 ? runs : undefined;
  }, { message: 'a run to claim' });
}

test('?wait answers when the run finishes, with the webhook response when the job set one', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server);
  const { channel: queue } = await joinQueue(socket);
  const waiting = api(server, 'POST', '/api/runs?wait=10', { plan: simplePlan() });
  const [run] = await claimSoon(queue);
  if (!run) return t.fail();
  await completeRunHappily(await joinRun(socket, run), run.id);
  const answered = await waiting;
  t.is(answered.status, 201);
  t.is(answered.body['id'], run.id);
  t.is(answered.body['state'], 'success');

  const hooked = api(server, 'POST', '/api/runs?wait=10', { plan: simplePlan() });
  const [second] = await claimSoon(queue);
  if (!second) return t.fail();
  const channel = await joinRun(socket, second);
  await push(channel, 'run:start', {});
  await push(channel, 'step:start', { step_id: 'h1', job_id: 'job-1' });
  await push(channel, 'step:complete', { step_id: 'h1', job_id: 'job-1', reason: 'success', error_type: null, error_message: null, webhook_response: { status: 202, body: { accepted: true } } });
  await push(channel, 'run:complete', { reason: 'success', error_type: null, error_message: null });
  const hookedAnswer = await hooked;
  t.is(hookedAnswer.status, 202);
  t.deepEqual(hookedAnswer.body, { accepted: true });
});

test('?wait answers 504 with the run when it does not finish in time', async (t) => {
  const server = await startServer(t);
  const result = await api(server, 'POST', '/api/runs?wait=0.2', { plan: simplePlan() });
  t.is(result.status, 504);
  t.is(result.body['error'], 'timeout');
  t.is((result.body['run'] as Record<string, unknown>)['state'], 'available');
});

test('cancel: an available run never starts, a run in flight is cancelled and its worker told on its next event', async (t) => {
  const server = await startServer(t);
  const idle = await submitRun(server);
  const cancelled = await api(server, 'POST', `/api/runs/${idle}/cancel`);
  t.is(cancelled.status, 200);
  t.is(cancelled.body['state'], 'cancelled');
  t.is((await api(server, 'POST', `/api/runs/${idle}/cancel`)).status, 409);
  const busy = await submitRun(server);
  const socket = await connectWorker(t, server);
  const { channel: queue } = await joinQueue(socket);
  const [claimed] = await claim(queue, ['*'], 5);
  t.is(claimed?.id, busy);
  if (!claimed) return;
  const run = await joinRun(socket, claimed);
  await push(run, 'run:start', {});
  t.is((await api(server, 'POST', `/api/runs/${busy}/cancel`)).status, 200);
  t.deepEqual(await push(run, 'run:heartbeat', {}), { status: 'error', response: { state: ['already in completed state'] } });
  t.deepEqual(await push(run, 'run:complete', { reason: 'success', error_type: null, error_message: null }), {
    status: 'error',
    response: { state: ['already in completed state'] },
  });
  t.is((await api(server, 'GET', `/api/runs/${busy}`)).body['state'], 'cancelled');
  t.is((await api(server, 'POST', '/api/runs/nope/cancel')).status, 404);
});

test('workers, queues, credentials, health and metrics endpoints', async (t) => {
  const server = await startServer(t);
  t.deepEqual((await api(server, 'GET', '/livez')).body, { status: 'ok' });
  t.deepEqual((await api(server, 'GET', '/readyz')).body, { status: 'ready' });
  const socket = await connectWorker(t, server, { workerId: 'w-9' });
  const { channel: queue } = await joinQueue(socket, { fast_lane: 1, 'manual>*': 4 });
  const runId = await submitRun(server, { queue: 'fast_lane' });
  await submitRun(server, { queue: 'manual' });
  const [claimed] = await claim(queue, ['fast_lane'], 1, 'box-1');
  t.is(claimed?.id, runId);
  const workers = await api<{ workers: Array<Record<string, unknown>> }>(server, 'GET', '/api/workers');
  t.is(workers.body.workers.length, 1);
  t.like(workers.body.workers[0], { id: 'w-9', name: 'box-1', capacity: 5, lanes: [{ chain: 'fast_lane', slots: 1 }, { chain: 'manual>*', slots: 4 }], active_runs: [runId] });
  const queues = await api<{ queues: Array<Record<string, unknown>> }>(server, 'GET', '/api/queues');
  t.deepEqual(queues.body.queues.map((q) => [q['name'], q['counts'], q['suspended']]), [
    ['fast_lane', { claimed: 1 }, false],
    ['manual', { available: 1 }, false],
  ]);
  t.is(typeof queues.body.queues[1]?.['oldest_available_age_ms'], 'number');
  t.is((await api(server, 'PUT', '/api/credentials/c1', [1])).status, 422);
  t.is((await api(server, 'PUT', '/api/credentials/c1', { token: 's3cret' })).status, 200);
  const metrics = await api<string>(server, 'GET', '/metrics');
  t.is(metrics.status, 200);
  t.regex(metrics.body, /lanes_runs\{queue="manual",state="available"\} 1/);
  t.regex(metrics.body, /lanes_workers_connected 1/);
  t.regex(metrics.body, /lanes_claim_requests_total 1/);
  t.regex(metrics.body, /lanes_runs_claimed_total\{queue="fast_lane"\} 1/);
  t.regex(metrics.body, /lanes_claim_wait_seconds_count\{queue="fast_lane"\} 1/);
});

test('bad bodies, paths and query parameters get 4xx {error, field, message} and store nothing', async (t) => {
  const server = await startServer(t, { maxBodyBytes: 2_000, maxWaitSeconds: 5 });
  const expectProblem = async (method: string, path: string, body: unknown, status: number, field: string) => {
    const result = await api(server, method, path, body);
    t.is(result.status, status, `${method} ${path}`);
    t.is(result.body['field'], field, `${method} ${path}`);
    t.is(typeof result.body['error'], 'string');
    t.is(typeof result.body['message'], 'string');
  };
  // Submissions: unknown or misspelt fields, bodies that are not objects, nesting past the limit.
  await expectProblem('POST', '/api/runs', { plan: simplePlan(), max_attempt: 3 }, 422, 'max_attempt');
  await expectProblem('POST', '/api/runs', [simplePlan()], 422, 'body');
  await expectProblem('POST', '/api/runs', '"a string"', 422, 'body');
  await expectProblem('POST', '/api/runs', 'null', 422, 'body');
  await expectProblem('POST', '/api/runs', `{"plan": ${'['.repeat(300)}${']'.repeat(300)}}`, 422, 'body');
  await expectProblem('POST', '/api/runs', { plan: simplePlan(), idempotency_key: 7 }, 422, 'idempotency_key');
  await expectProblem('POST', '/api/runs', { plan: simplePlan(), queue: 3 }, 422, 'queue');
  await expectProblem('POST', '/api/runs?wait=0', { plan: simplePlan() }, 400, 'wait');
  await expectProblem('POST', '/api/runs?wait=6', { plan: simplePlan() }, 400, 'wait');
  // Queries and paths.
  for (const limit of ['abc', '0', '1001', '1.5', '']) await expectProblem('GET', `/api/runs?limit=${limit}`, undefined, 400, 'limit');
  await expectProblem('GET', '/api/runs?dead_letter=maybe', undefined, 400, 'dead_letter');
  await expectProblem('GET', '/api/runs?queue=no%20spaces', undefined, 400, 'queue');
  await expectProblem('GET', '/api/runs/%E0%A4%A', undefined, 400, 'path');
  await expectProblem('POST', '/api/queues/bad!name/suspend', undefined, 400, 'name');
  // Credentials: not JSON, not an object, too big.
  await expectProblem('PUT', '/api/credentials/c1', '{"user":', 400, 'body');
  await expectProblem('PUT', '/api/credentials/c1', '"secret"', 422, 'body');
  const tooBig = await api(server, 'PUT', '/api/credentials/c1', { token: 'x'.repeat(3_000) });
  t.is(tooBig.status, 413);
  t.is(tooBig.body['error'], 'payload_too_large');
  t.is(await server.store.getCredential('c1'), undefined);
  t.deepEqual((await api(server, 'GET', '/api/runs')).body, { runs: [] });
  t.deepEqual((await api(server, 'GET', '/api/queues')).body, { queues: [] });
});
