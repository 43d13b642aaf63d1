/**
 * The store features through the real server: delayed runs (`not_before`),
 * keyset pages of `GET /api/runs`, and retention. Also run on PostgreSQL by
 * postgres-conformance.test.ts.
 */
import test from 'ava';
import { api, claim, completeRunHappily, connectWorker, joinQueue, joinRun, nextPush, startServer, submitRun, waitFor } from './helpers.ts';

interface Summary {
  id: string;
  state: string;
  available_at: string;
}

test('a run with not_before is not handed out before that time, and its workers are woken when it is due', async (t) => {
  const server = await startServer(t, { workAvailableDebounceMs: 0 });
  const socket = await connectWorker(t, server);
  const { channel } = await joinQueue(socket, { '*': 2 });
  // Far enough ahead that a loaded machine still claims before it is due.
  const due = new Date(Date.now() + 8_000);
  const submitted = await api<Summary>(server, 'POST', '/api/runs', {
    plan: { jobs: [{ id: 'job-1', body: 'fn(s => s)', adaptor: '@openfn/language-common@1.0.0' }] },
    not_before: due.toISOString(),
  });
  t.is(submitted.status, 201);
  t.deepEqual(await claim(channel, ['*'], 2), []);
  const shown = await api<Summary>(server, 'GET', `/api/runs/${submitted.body.id}`);
  t.is(shown.body.available_at, due.toISOString());
  // The wake comes when the run is due; a claim then gets it.
  await nextPush(channel, 'work-available', 60_000);
  t.true(Date.now() >= due.getTime() - 5);
  t.deepEqual((await claim(channel, ['*'], 2)).map((run) => run.id), [submitted.body.id]);
});

test('not_before must be an ISO time with a zone, at most a year ahead; a past one means now', async (t) => {
  const server = await startServer(t);
  const plan = { jobs: [{ id: 'job-1', body: 'fn(s => s)', adaptor: '@openfn/language-common@1.0.0' }] };
  for (const bad of ['tomorrow', 12345, '2026-12-01 10:00:00', '2026-13-45T99:00:00Z', new Date(Date.now() + 400 * 86_400_000).toISOString()]) {
    const result = await api<{ field: string }>(server, 'POST', '/api/runs', { plan, not_before: bad });
    t.is(result.status, 422, String(bad));
    t.is(result.body.field, 'not_before');
  }
  t.deepEqual((await api<{ runs: unknown[] }>(server, 'GET', '/api/runs')).body.runs, []);
  const past = await api<Summary>(server, 'POST', '/api/runs', { plan, not_before: '2001-01-01T00:00:00Z' });
  t.is(past.status, 201);
  const socket = await connectWorker(t, server);
  const { channel } = await joinQueue(socket, { '*': 1 });
  t.deepEqual((await claim(channel, ['*'], 1)).map((run) => run.id), [past.body.id]);
});

test('GET /api/runs pages newest first with next_cursor until the last page', async (t) => {
  const server = await startServer(t);
  const ids: string[] = [];
  for (let i = 0; i < 5; i += 1) ids.push(await submitRun(server, { queue: i % 2 === 0 ? 'even' : 'odd' }));
  const seen: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 5; page += 1) {
    const result = await api<{ runs: Summary[]; next_cursor?: string }>(server, 'GET', `/api/runs?limit=2${cursor ? `&before=${cursor}` : ''}`);
    t.is(result.status, 200);
    seen.push(...result.body.runs.map((run) => run.id));
    cursor = result.body.next_cursor;
    if (cursor === undefined) break;
  }
  t.deepEqual(seen, [...ids].reverse());
  const even = await api<{ runs: Summary[]; next_cursor?: string }>(server, 'GET', '/api/runs?queue=even&limit=2');
  t.deepEqual(even.body.runs.map((run) => run.id), [ids[4], ids[2]]);
  const rest = await api<{ runs: Summary[]; next_cursor?: string }>(server, 'GET', `/api/runs?queue=even&limit=2&before=${even.body.next_cursor ?? ''}`);
  t.deepEqual(rest.body.runs.map((run) => run.id), [ids[0]]);
  for (const bad of ['abc', '0', '-1', '1e5', '99999999999999999999']) {
    const result = await api<{ field: string }>(server, 'GET', `/api/runs?before=${bad}`);
    t.is(result.status, 400, bad);
    t.is(result.body.field, 'before');
  }
});

test('retention deletes runs finished longer ago than retainMs, with their logs, and keeps the rest', async (t) => {
  const server = await startServer(t, { retainMs: 300, retentionIntervalMs: 50 });
  const socket = await connectWorker(t, server);
  const { channel } = await joinQueue(socket, { '*': 1 });
  const finished = await submitRun(server);
  const [claimed] = await claim(channel, ['*'], 1);
  if (!claimed) throw new Error('nothing claimed');
  const runChannel = await joinRun(socket, claimed);
  await completeRunHappily(runChannel, finished);
  t.is((await api<Summary>(server, 'GET', `/api/runs/${finished}`)).body.state, 'success');
  const waiting = await submitRun(server, { queue: 'nobody_takes_this' });
  await waitFor(async () => (await api(server, 'GET', `/api/runs/${finished}`)).status === 404, { timeoutMs: 60_000, message: 'the finished run was never deleted' });
  t.is((await api(server, 'GET', `/api/runs/${finished}/logs`)).status, 404);
  t.is((await api<Summary>(server, 'GET', `/api/runs/${waiting}`)).body.state, 'available');
});
