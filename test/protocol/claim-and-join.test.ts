/**
 * The `worker:queue` shapes of protocol/: the claim payload the server checks
 * on every claim, the claim reply and join reply the worker reads, the join
 * payload. The socket tests (test/server/bad-input, bounded-input, socket)
 * check the same answers end to end.
 */
import test from 'ava';
import pino from 'pino';
import { MAX_LANES, MAX_REPORTED_ERRORS, batchLogsPayloadShape, joinPayloadProblems, readClaimPayload, stepCompletePayloadShape } from '../../src/protocol/index.ts';
import { parseClaimedRuns } from '../../src/worker/claim-reply.ts';
import { parseFeatures, workQueuesOf } from '../../src/worker/server-features.ts';

const silent = pino({ level: 'silent' });

test('a claim payload is read as it is, or refused field by field', (t) => {
  const claim = { demand: 2, worker_name: 'w', queues: ['fast_lane', '*'] };
  t.deepEqual(readClaimPayload(claim), { ok: true, claim });
  t.deepEqual(readClaimPayload('nope'), { ok: false, errors: { payload: ['must be an object'], demand: ['must be an integer from 1 to 1000'] } });
  t.deepEqual(readClaimPayload({ demand: 1, queues: ['*', 'manual'] }), { ok: false, errors: { queues: ['* may only be last'] } });
  t.deepEqual(readClaimPayload({ demand: 1, queues: [] }), { ok: false, errors: { queues: ['must name at least one queue'] } });
  t.deepEqual(readClaimPayload({ demand: 1, queues: 'manual' }), { ok: false, errors: { queues: ['must be a list of queue names'] } });
  t.deepEqual(readClaimPayload({ demand: 1, queues: ['ok', 'not ok'] }), { ok: false, errors: { 'queues[1]': ['queue name must match ^[A-Za-z0-9_]+$, got "not ok"'] } });
  t.deepEqual(readClaimPayload({ demand: 1, worker_name: 5 }), { ok: false, errors: { worker_name: ['must be a string of at most 255 characters, or null'] } });
  const partial = readClaimPayload({ demand: 1, max_run_memory_mb: 100 });
  t.false(partial.ok);
  if (!partial.ok) t.deepEqual(Object.keys(partial.errors).sort(), ['default_run_memory_mb', 'lane_memory_mb']);
  t.true(readClaimPayload({ demand: 1, max_run_memory_mb: 100, lane_memory_mb: 200, default_run_memory_mb: 50 }).ok);
});

test('a join payload is refused field by field, problems inside a map told under the map', (t) => {
  t.deepEqual(joinPayloadProblems({ capacity: 5, queues: { 'fast_lane': 1, 'manual>*': 4 }, lanes_memory_mb: { fast_lane: 256 } }), {});
  t.deepEqual(joinPayloadProblems('Lightning sends nothing'), {});
  t.deepEqual(joinPayloadProblems({ capacity: 1e12, queues: { '*': 1e12 } }), {
    capacity: ['must be an integer from 0 to 10000'],
    queues: ['*: slots must be an integer from 1 to 1000'],
  });
  t.deepEqual(joinPayloadProblems({ queues: { '*>manual': 1 } }), { queues: ['*>manual: * may only be last'] });
  t.deepEqual(joinPayloadProblems({ queues: { a: 1 }, lanes_memory_mb: { b: 5 } }), { lanes_memory_mb: ['b: is not a lane of queues'] });
  const many = Object.fromEntries(Array.from({ length: MAX_LANES + 1 }, (_, i) => [`q${i}`, 1]));
  t.deepEqual(joinPayloadProblems({ queues: many }), { queues: [`must declare at most ${MAX_LANES} lanes`] });
  t.deepEqual(joinPayloadProblems({ queues: { a: 1 }, lanes: [{ queues: ['a'], capacity: 0 }] }), { 'lanes[0]': ['capacity: must be an integer from 1 to 1000'] });
});

test('the worker reads a claim reply: a good one whole, a malformed run dropped, a bad memory need ignored', (t) => {
  t.deepEqual(parseClaimedRuns({ runs: [{ id: 'a', token: 't', memory_mb: 64 }] }, silent), [{ id: 'a', token: 't', memory_mb: 64 }]);
  t.deepEqual(parseClaimedRuns({ runs: [{ id: 'a' }, { id: 'b', token: 't', memory_mb: -1 }] }, silent), [{ id: 'b', token: 't' }]);
  t.deepEqual(parseClaimedRuns({ nothing: true }, silent), []);
  t.deepEqual(parseClaimedRuns(null, silent), []);
  // claim_plans: a carried plan is read as fetch:plan's reply; one for another run, or malformed, is left out with its input.
  const plan = { id: 'a', jobs: [{ id: 'j', body: 'fn(s => s)', adaptor: 'x' }] };
  t.deepEqual(parseClaimedRuns({ runs: [{ id: 'a', token: 't', plan, dataclip: '{}' }] }, silent), [
    { id: 'a', token: 't', plan: { ...plan, dataclip_id: '', triggers: [], edges: [], starting_node_id: 'j' }, dataclip: '{}' },
  ]);
  t.deepEqual(parseClaimedRuns({ runs: [{ id: 'b', token: 't', plan, dataclip: '{}' }] }, silent), [{ id: 'b', token: 't' }]);
  t.deepEqual(parseClaimedRuns({ runs: [{ id: 'a', token: 't', memory_mb: 8, plan: { id: 'a', jobs: 'none' }, dataclip: '{}' }] }, silent), [{ id: 'a', token: 't', memory_mb: 8 }]);
  // A plan of the right shape whose edge names a job it lacks breaks a graph rule: left out too, and fetched.
  const brokenGraph = { ...plan, edges: [{ id: 'e', source_job_id: 'nobody', target_job_id: 'j' }] };
  t.deepEqual(parseClaimedRuns({ runs: [{ id: 'a', token: 't', plan: brokenGraph, dataclip: '{}' }] }, silent), [{ id: 'a', token: 't' }]);
});

test('the worker uses an extension only when a well-formed join reply offers it', (t) => {
  const lanes = parseFeatures({ capabilities: ['run_heartbeat', 'some_future_thing'], heartbeat_interval_ms: 1000, lease_ms: 5000 });
  t.deepEqual([...lanes.capabilities], ['run_heartbeat']);
  t.is(lanes.heartbeatIntervalMs, 1000);
  const lightning = parseFeatures({});
  t.is(lightning.capabilities.size, 0);
  t.is(lightning.leaseMs, null);
  t.is(parseFeatures({ capabilities: ['run_heartbeat'], lease_ms: -1 }).capabilities.size, 0);
});

test('a work-available push wakes named lanes only when work_queues was offered and the payload fits; anything else wakes every lane', (t) => {
  const offered = parseFeatures({ capabilities: ['work_queues'] });
  t.deepEqual(workQueuesOf(offered, { queues: ['fast_lane', 'manual'] }), ['fast_lane', 'manual']);
  t.is(workQueuesOf(offered, {}), null, 'Lightning\'s {} wakes every lane');
  t.is(workQueuesOf(parseFeatures({}), { queues: ['manual'] }), null, 'not offered: the names are not trusted');
  for (const bad of [{ queues: [] }, { queues: ['no spaces'] }, { queues: 'manual' }, { queues: ['manual'], extra: 1 }, { queues: Array.from({ length: 65 }, (_, i) => `q${i}`) }, null, 'x']) {
    t.is(workQueuesOf(offered, bad), null, `${JSON.stringify(bad)} wakes every lane`);
  }
});

test('run-channel event shapes: every problem by field, a union\'s null branch silent, the count bounded', (t) => {
  const bad = { step_id: 's', job_id: 7, reason: 'done', mem: 'lots', duration: -1, thread_id: 'a', output_dataclip: 5, webhook_response: { status: 42 } };
  t.deepEqual(stepCompletePayloadShape.problems(bad), {
    job_id: ["can't be blank"],
    reason: ['is invalid'],
    output_dataclip: ['must be a JSON string'],
    mem: ['must be {job, system} numbers'],
    duration: ['must be a non-negative number'],
    thread_id: ['must be a number'],
    'webhook_response.status': ['must be an HTTP status'],
  });
  t.true(stepCompletePayloadShape.check({ step_id: 's', job_id: 'j', reason: 'success', webhook_response: null, thread_id: null }));
  const lines = Array.from({ length: 1000 }, () => ({ message: 'not a list' }));
  const problems = batchLogsPayloadShape.problems({ logs: lines });
  t.true(Object.values(problems).flat().length <= MAX_REPORTED_ERRORS, 'a huge bad batch gets a bounded reply');
  t.deepEqual(problems['logs[0].message'], ['must be a list']);
});
