/**
 * Bounded input, one rule on both sides (protocol/limits.ts): the API, the
 * worker socket and the worker's configuration refuse the same oversized
 * queue names and lanes; metric labels stay bounded however many queues
 * clients invent; a reused idempotency key with another body is a conflict.
 */
import test from 'ava';
import { resolveWorkerConfig } from '../../src/config/worker-config.ts';
import { ConfigError } from '../../src/errors/config-error.ts';
import { parseWorkloops } from '../../src/lanes/parse-workloops.ts';
import { WorkloopsError } from '../../src/lanes/workloops-error.ts';
import { MAX_LANE_CAPACITY, MAX_QUEUE_NAME_LENGTH, WORKER_QUEUE_TOPIC } from '../../src/protocol/index.ts';
import { MAX_QUEUE_LABELS } from '../../src/server/queue-labels.ts';
import { api, claim, connectWorker, join, joinQueue, push, simplePlan, startServer } from './helpers.ts';

const LONGEST = 'q'.repeat(MAX_QUEUE_NAME_LENGTH);
const TOO_LONG = 'q'.repeat(MAX_QUEUE_NAME_LENGTH + 1);

test('the API refuses a queue name over 64 characters naming the limit, and takes one of 64', async (t) => {
  const server = await startServer(t);
  const refused = await api(server, 'POST', '/api/runs', { queue: TOO_LONG, plan: simplePlan() });
  t.is(refused.status, 422);
  t.like(refused.body, { field: 'queue' });
  t.regex(String(refused.body['message']), /^must be at most 64 characters, got 65: "q{60}/);
  const huge = await api(server, 'POST', '/api/runs', { queue: 'x'.repeat(1_000_000), plan: simplePlan() });
  t.is(huge.status, 422);
  t.true(String(huge.body['message']).length < 200, 'the message quotes a bounded part of the name');
  t.is((await api(server, 'POST', '/api/runs', { queue: LONGEST, plan: simplePlan() })).status, 201);
  t.is((await api(server, 'GET', `/api/runs?queue=${TOO_LONG}`)).status, 400);
  const suspend = await api(server, 'POST', `/api/queues/${TOO_LONG}/suspend`);
  t.is(suspend.status, 400);
  t.regex(String(suspend.body['message']), /at most 64 characters/);
  t.is((await server.store.listRuns({ limit: 10 })).length, 1);
});

test('the socket refuses a join or a claim naming a queue over 64 characters, and a lane over the lane limit', async (t) => {
  const server = await startServer(t);
  const socket = await connectWorker(t, server);
  const badJoin = await join<{ errors?: Record<string, string[]> }>(socket, WORKER_QUEUE_TOPIC, { capacity: 1, queues: { [TOO_LONG]: 1 } });
  t.is(badJoin.status, 'error');
  t.regex(JSON.stringify(badJoin.response), /queue name must be at most 64 characters, got 65/);
  const bigLane = await join(socket, WORKER_QUEUE_TOPIC, { capacity: MAX_LANE_CAPACITY + 1, queues: { manual: MAX_LANE_CAPACITY + 1 } });
  t.is(bigLane.status, 'error');
  t.regex(JSON.stringify(bigLane.response), /slots must be an integer from 1 to 1000/);

  const { channel } = await joinQueue(socket, { 'manual>*': 1 });
  const badClaim = await push(channel, 'claim', { demand: 1, queues: [TOO_LONG] });
  t.is(badClaim.status, 'error');
  t.regex(JSON.stringify(badClaim.response), /at most 64 characters/);
  t.deepEqual(await claim(channel, [LONGEST]), [], 'a 64-character name is a queue');
});

test('the worker configuration refuses what the server would refuse at the join', (t) => {
  const secret = { WORKER_SECRET: 'shh' };
  const refuses = (flags: Record<string, string>, pattern: RegExp) => {
    const error = t.throws(() => resolveWorkerConfig(flags, secret), { instanceOf: ConfigError });
    t.regex(error?.message ?? '', pattern);
    t.true((error?.message.length ?? 0) < 400, 'one readable line');
  };
  refuses({ workloops: `${TOO_LONG}:1` }, /a queue name must be at most 64 characters, got 65/);
  refuses({ workloops: `${'x'.repeat(100_000)}:1` }, /at most 64 characters, got 100000/);
  refuses({ workloops: Array.from({ length: 65 }, (_, i) => `q${i}:1`).join(' ') }, /at most 64 lanes, got 65/);
  refuses({ workloops: Array.from({ length: 11 }, (_, i) => `q${i}:1000`).join(' ') }, /add up to at most 10000, got 11000/);
  refuses({ workloops: `${Array.from({ length: 65 }, (_, i) => `q${i}`).join('>')}:1` }, /at most 64 queues, got 65/);
  refuses({ capacity: '1001' }, /--capacity.*"1001" must be at most 1000/);
  refuses({ 'spare-children': '65' }, /--spare-children.*must be at most 64/);
  t.is(resolveWorkerConfig({ capacity: '1000' }, secret).config.capacity, 1000);
  t.is(resolveWorkerConfig({ workloops: `${LONGEST}:1000 a:1000` }, secret).config.capacity, 2000);
  t.throws(() => parseWorkloops(`${TOO_LONG}:1`), { instanceOf: WorkloopsError });
});

test('an idempotency key reused with another body is 409 with the existing run id; the same body is 200', async (t) => {
  const server = await startServer(t);
  const body = { plan: simplePlan(), idempotency_key: 'order-9', input: { data: { n: 1 } }, queue: 'manual' };
  const first = await api(server, 'POST', '/api/runs', body);
  t.is(first.status, 201);
  t.is((await api(server, 'POST', '/api/runs', body)).status, 200);
  for (const [field, changed] of [
    ['input', { ...body, input: { data: { n: 2 } } }],
    ['plan', { ...body, plan: simplePlan('fn(s => ({ ...s, other: true }))') }],
    ['queue', { ...body, queue: 'fast_lane' }],
    ['priority', { ...body, priority: 5 }],
    ['max_attempts', { ...body, max_attempts: 3 }],
  ] as const) {
    const conflict = await api(server, 'POST', '/api/runs', changed);
    t.is(conflict.status, 409, field);
    t.like(conflict.body, { error: 'conflict', field: 'idempotency_key', id: first.body['id'] });
    t.regex(String(conflict.body['message']), new RegExp(`different ${field}$`));
  }
  t.is((await server.store.listRuns({ limit: 10 })).length, 1);
});

test('/metrics stays under 200 KB with 10,000 distinct queue names submitted and claimed', async (t) => {
  t.timeout(110_000);
  const server = await startServer(t);
  const total = 10_000;
  let next = 0;
  const submitOne = async (): Promise<void> => {
    while (next < total) {
      const index = next++;
      const result = await api(server, 'POST', '/api/runs', { queue: `invented_${index}`, plan: simplePlan() });
      if (result.status !== 201) throw new Error(`submit ${index}: ${result.status}`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, submitOne));
  // Claims touch the per-queue counters and the claim-wait histogram too.
  const socket = await connectWorker(t, server);
  const { channel } = await joinQueue(socket, { '*': 1000 });
  let claimed = 0;
  for (let round = 0; round < 3; round += 1) claimed += (await claim(channel, ['*'], 1000)).length;
  t.is(claimed, 3000);

  const text = await (await fetch(`${server.url}/metrics`)).text();
  t.log(`${text.length} bytes of /metrics`);
  t.true(text.length < 200 * 1024, `${text.length} bytes`);
  const runQueues = new Set([...text.matchAll(/^lanes_runs\{queue="([^"]+)"/gm)].map((m) => m[1]));
  t.is(runQueues.size, MAX_QUEUE_LABELS + 1);
  t.true(runQueues.has('~other'));
  const claimedQueues = new Set([...text.matchAll(/^lanes_runs_claimed_total\{queue="([^"]+)"/gm)].map((m) => m[1]));
  t.true(claimedQueues.size <= MAX_QUEUE_LABELS + 1);
  const other = [...text.matchAll(/^lanes_runs\{queue="~other",state="(\w+)"\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[2]), 0);
  const named = [...text.matchAll(/^lanes_runs\{queue="invented_\d+",state="\w+"\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  t.is(other + named, total, 'every run is counted once');
});
