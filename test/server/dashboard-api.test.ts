/**
 * The dashboard's server side against a real server and the real phoenix
 * client: the snapshot puts each run on the lane that claimed it, the event
 * stream sends a new snapshot when something changes, a dead letter can be
 * retried, and the page shell holds no run data.
 */
import test from 'ava';
import { request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { DashboardSnapshot } from '../../src/protocol/index.ts';
import { MAX_FEED_LISTENERS } from '../../src/server/dashboard-feed.ts';
import { api, claim, completeRunHappily, connectWorker, deadLetterRun, join, joinQueue, joinRun, push, simplePlan, startServer, submitRun, TEST_API_TOKEN, waitFor } from './helpers.ts';

test('the snapshot draws a run on the lane that claimed it, then on the timeline with its outcome', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server, { workerId: 'worker-a' });
  const { channel } = await joinQueue(socket, { fast_lane: 1, 'manual>*': 2 });
  const runId = await submitRun(server, { queue: 'fast_lane' });
  // The wildcard lane takes a fast_lane run: it must show on `manual>*`, not on the lane named after its queue.
  const [claimed] = await claim(channel, ['manual', '*'], 1, 'laptop');
  t.is(claimed?.id, runId);

  const busy = (await api<DashboardSnapshot>(server, 'GET', '/api/dashboard')).body;
  const worker = busy.workers.find((candidate) => candidate.id === 'worker-a');
  t.is(worker?.name, 'laptop');
  t.deepEqual(worker?.lanes.map((lane) => [lane.chain, lane.slots, lane.runs.map((run) => run.run_id)]), [
    ['fast_lane', 1, []],
    ['manual>*', 2, [runId]],
  ]);
  t.is(worker?.lanes[1]?.runs[0]?.queue, 'fast_lane');
  t.is(worker?.lanes[1]?.runs[0]?.state, 'claimed');
  t.true((worker?.last_seen_at ?? 0) >= busy.now - 5_000);
  t.deepEqual(busy.queues.find((queue) => queue.name === 'fast_lane')?.running, 1);

  await completeRunHappily(await joinRun(socket, claimed!), runId);
  const done = (await api<DashboardSnapshot>(server, 'GET', '/api/dashboard')).body;
  t.deepEqual(done.workers[0]?.lanes.map((lane) => lane.runs.length), [0, 0]);
  const row = done.timeline.find((candidate) => candidate.worker === 'worker-a' && candidate.chain === 'manual>*');
  t.is(row?.attempts[0]?.run_id, runId);
  t.is(row?.attempts[0]?.state, 'success');
  t.truthy(row?.attempts[0]?.started_at);
  t.truthy(row?.attempts[0]?.finished_at);
  // Every declared lane has a row, busy or not.
  t.truthy(done.timeline.find((candidate) => candidate.worker === 'worker-a' && candidate.chain === 'fast_lane'));
  const queue = done.queues.find((candidate) => candidate.name === 'fast_lane');
  t.is(queue?.per_minute, 1);
  t.is(queue?.depth, 0);
});

test('when lanes carry memory, the snapshot shows each lane\'s share, the worker\'s ceiling and each run\'s reserved memory', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server, { workerId: 'worker-m' });
  const joined = await join(socket, 'worker:queue', { capacity: 3, queues: { fast_lane: 1, 'manual>*': 2 }, lanes_memory_mb: { fast_lane: 256, 'manual>*': 1024 }, memory_ceiling_mb: 1600 });
  t.is(joined.status, 'ok');
  const plan = { ...simplePlan(), options: { run_memory_limit_mb: 300 } };
  const declared = await submitRun(server, { queue: 'manual', plan });
  const plain = await submitRun(server, { queue: 'manual' });
  const claimed = await push<{ runs: Array<{ id: string }> }>(joined.channel, 'claim', {
    demand: 2, worker_name: null, queues: ['manual', '*'], max_run_memory_mb: 1024, lane_memory_mb: 1024, default_run_memory_mb: 200,
  });
  t.deepEqual(claimed.response.runs.map((run) => run.id), [declared, plain]);
  const { body } = await api<DashboardSnapshot>(server, 'GET', '/api/dashboard');
  const worker = body.workers.find((candidate) => candidate.id === 'worker-m');
  t.is(worker?.memory_ceiling_mb, 1600);
  t.deepEqual(worker?.lanes.map((lane) => [lane.chain, lane.memory_mb, lane.runs.map((run) => [run.run_id, run.memory_mb])]), [
    ['fast_lane', 256, []],
    ['manual>*', 1024, [[declared, 300], [plain, 200]]],
  ]);
});

test('a run in flight shows the job of its open step', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server);
  const { channel } = await joinQueue(socket, { 'manual>*': 1 });
  await submitRun(server);
  const [claimed] = await claim(channel, ['manual', '*']);
  const run = await joinRun(socket, claimed!);
  await push(run, 'run:start', { timestamp: String(Date.now() * 1000) });
  await push(run, 'step:start', { step_id: 'step-1', job_id: 'job-1', timestamp: String(Date.now() * 1000) });
  const { body } = await api<DashboardSnapshot>(server, 'GET', '/api/dashboard');
  t.is(body.workers[0]?.lanes[0]?.runs[0]?.step, 'job-1');
  t.is(body.workers[0]?.lanes[0]?.runs[0]?.state, 'started');
});

/** Reads `GET /api/events` and collects snapshots until closed at teardown. */
async function follow(t: import('ava').ExecutionContext, url: string): Promise<{ snapshots: DashboardSnapshot[]; response: IncomingMessage }> {
  const snapshots: DashboardSnapshot[] = [];
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(`${url}/api/events`, { headers: { accept: 'text/event-stream', authorization: `Bearer ${TEST_API_TOKEN}` } }, resolve);
    req.on('error', reject);
    req.end();
    t.teardown(() => req.destroy());
  });
  let buffer = '';
  response.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split('\n').find((line) => line.startsWith('data: '));
      if (block.includes('event: snapshot') && data) snapshots.push(JSON.parse(data.slice(6)) as DashboardSnapshot);
      end = buffer.indexOf('\n\n');
    }
  });
  return { snapshots, response };
}

test('the event stream sends the snapshot at once, then again when a run is submitted', async (t) => {
  const server = await startServer(t);
  const { snapshots, response } = await follow(t, server.url);
  t.is(response.statusCode, 200);
  t.regex(String(response.headers['content-type']), /^text\/event-stream/);
  await waitFor(() => snapshots.length >= 1, { message: 'the first snapshot' });
  t.deepEqual(snapshots[0]?.queues, []);
  const runId = await submitRun(server, { queue: 'manual' });
  const changed = await waitFor(() => snapshots.find((snapshot) => snapshot.queues.some((queue) => queue.name === 'manual' && queue.depth === 1)), {
    message: 'a snapshot with the new run waiting',
  });
  t.truthy(changed);
  await api(server, 'POST', `/api/runs/${runId}/cancel`);
  await waitFor(() => snapshots.at(-1)?.queues.some((queue) => queue.name === 'manual' && queue.depth === 0 && queue.counts.cancelled === 1), {
    message: 'a snapshot with the run cancelled',
  });
});

test('open streams are bounded: one past the limit is refused with 503 and a JSON reason', async (t) => {
  const server = await startServer(t);
  const streams = await Promise.all(Array.from({ length: MAX_FEED_LISTENERS }, () => follow(t, server.url)));
  t.true(streams.every(({ response }) => response.statusCode === 200));
  // fetch resolves at the headers, so a stream that was wrongly accepted fails here instead of hanging.
  const refused = await fetch(`${server.url}/api/events`, { headers: { authorization: `Bearer ${TEST_API_TOKEN}` } });
  t.is(refused.status, 503);
  t.is(((await refused.json()) as { error: string }).error, 'unavailable');
  // A closed stream frees its place.
  streams[0]?.response.destroy();
  await waitFor(async () => {
    const { snapshots, response } = await follow(t, server.url);
    if (response.statusCode !== 200) return false;
    await waitFor(() => snapshots.length > 0);
    return true;
  }, { message: 'a place for a new stream', timeoutMs: 10_000, intervalMs: 100 });
});

test('a dead letter is retried once more; any other run gets 409', async (t) => {
  const server = await startServer(t);
  const { runId, queue: channel } = await deadLetterRun(t, server);
  const crashed = await api<{ state: string; dead_letter: boolean }>(server, 'GET', `/api/runs/${runId}`);
  t.is(crashed.body.state, 'crashed');
  t.true(crashed.body.dead_letter);

  const retried = await api<{ state: string; dead_letter: boolean; max_attempts: number }>(server, 'POST', `/api/runs/${runId}/retry`);
  t.is(retried.status, 200);
  t.is(retried.body.state, 'available');
  t.false(retried.body.dead_letter);
  t.is(retried.body.max_attempts, 2);
  const [again] = await claim(channel, ['manual', '*']);
  t.is(again?.id, runId);
  const history = await api<{ history: Array<{ attempt: number; state: string }> }>(server, 'GET', `/api/runs/${runId}`);
  t.deepEqual(history.body.history.map((attempt) => [attempt.attempt, attempt.state]), [[1, 'crashed'], [2, 'claimed']]);

  const refused = await api<{ field: string }>(server, 'POST', `/api/runs/${runId}/retry`);
  t.is(refused.status, 409);
  t.is(refused.body.field, 'dead_letter');
  t.is((await api(server, 'POST', '/api/runs/no-such-run/retry')).status, 404);
});

test('the page and its files are served with a strict policy and hold no run data', async (t) => {
  const server = await startServer(t);
  const runId = await submitRun(server);
  const page = await fetch(`${server.url}/`);
  t.is(page.status, 200);
  t.regex(page.headers.get('content-type') ?? '', /^text\/html/);
  t.regex(page.headers.get('content-security-policy') ?? '', /default-src 'none'.*script-src 'self'.*frame-ancestors 'none'/);
  const html = await page.text();
  t.regex(html, /<script type="module" src="\/dashboard\.js"><\/script>/);
  const script = await fetch(`${server.url}/dashboard.js`);
  t.regex(script.headers.get('content-type') ?? '', /^text\/javascript/);
  const js = await script.text();
  t.true(js.length > 1000);
  t.false(js.includes('https://'), 'the bundle loads nothing from elsewhere');
  const css = await fetch(`${server.url}/dashboard.css`);
  t.regex(css.headers.get('content-type') ?? '', /^text\/css/);
  for (const body of [html, js, await css.text()]) t.false(body.includes(runId));
});

test('the snapshot and the stream need the API token; the page shell does not', async (t) => {
  const server = await startServer(t);
  for (const path of ['/api/dashboard', '/api/events']) {
    const missing = await fetch(`${server.url}${path}`);
    t.is(missing.status, 401, path);
    t.is(((await missing.json()) as { error: string }).error, 'missing_token');
    const wrong = await fetch(`${server.url}${path}`, { headers: { authorization: 'Bearer not-the-token' } });
    t.is(wrong.status, 401, path);
    t.is(((await wrong.json()) as { error: string }).error, 'invalid_token');
  }
  for (const path of ['/', '/dashboard.js', '/dashboard.css']) t.is((await fetch(`${server.url}${path}`)).status, 200, path);
});
