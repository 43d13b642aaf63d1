/**
 * The plan and submission shapes of protocol/: one schema each, whose
 * problems name the field as a dotted path with the schema's own message.
 * The server's API and the worker's plan reading use exactly these (their
 * own tests cover the HTTP and socket ends).
 */
import test from 'ava';
import Type from 'typebox';
import { planBodyShape, planGraphProblem, planReplyShape, submissionProblem, wireShape } from '../../src/protocol/index.ts';
import { readPlanReply } from '../../src/worker/plan-reply.ts';

const job = (id: string) => ({ id, body: 'fn(s => s)', adaptor: '@openfn/language-common@latest' });
const plan = { jobs: [job('a'), job('b')], triggers: [{ id: 't' }], edges: [{ id: 'e', source_trigger_id: 't', target_job_id: 'a' }] };
const NOW = Date.parse('2026-11-30T12:00:00Z');

test('a submission problem names the field by its path with the schema message', (t) => {
  const cases: Array<[unknown, string, string | RegExp]> = [
    [[], 'body', 'must be a JSON object'],
    [{ plan, max_attempt: 2 }, 'max_attempt', /^is not a field of a submission \(queue, priority/],
    [{ plan, priority: 1.5 }, 'priority', 'must be an integer from -1000000 to 1000000'],
    [{ plan, queue: 'no spaces' }, 'queue', 'must match ^[A-Za-z0-9_]+$, got "no spaces"'],
    [{ plan, queue: 'q'.repeat(65) }, 'queue', /^must be at most 64 characters, got 65/],
    [{ plan, idempotency_key: '' }, 'idempotency_key', 'must be a string of 1 to 255 characters'],
    [{ plan, input: [1] }, 'input', 'must be a JSON object'],
    [{ plan, not_before: 'soon' }, 'not_before', /^must be an ISO 8601 time/],
    [{ plan, not_before: '2099-01-01T00:00:00Z' }, 'not_before', 'must be at most 366 days ahead'],
    [{}, 'plan', 'must be an object'],
    [{ plan: { jobs: [] } }, 'plan.jobs', 'must be a non-empty list'],
    [{ plan: { jobs: [{ id: 'a', body: 'x' }] } }, 'plan.jobs[0].adaptor', 'must be a non-empty string'],
    [{ plan: { jobs: [job('a'), { ...job('b'), body: 7 }] } }, 'plan.jobs[1].body', 'must be a string'],
    [{ plan: { ...plan, edges: 'none' } }, 'plan.edges', 'must be a list'],
    [{ plan: { ...plan, options: { run_timeout_ms: -1 } } }, 'plan.options.run_timeout_ms', 'must be a positive number'],
    [{ plan: { ...plan, options: { output_dataclips: 'no' } } }, 'plan.options.output_dataclips', 'must be a boolean'],
    [{ plan: { ...plan, jobs: [job('a'), job('a')] } }, 'plan.jobs[1].id', 'is used by another job: "a"'],
    [{ plan: { ...plan, edges: [{ id: 'e', source_job_id: 'a', target_job_id: 'zz' }] } }, 'plan.edges[0].target_job_id', 'names job "zz", which is not in the plan'],
    [{ plan: { ...plan, edges: [{ id: 'e', target_job_id: 'b' }] } }, 'plan.edges[0]', 'needs exactly one of source_job_id and source_trigger_id'],
    [{ plan: { ...plan, starting_node_id: 'x' } }, 'plan.starting_node_id', 'names "x", which is not a job or trigger of the plan'],
  ];
  for (const [body, field, message] of cases) {
    const problem = submissionProblem(body, NOW);
    t.is(problem?.field, field, JSON.stringify(body));
    if (typeof message === 'string') t.is(problem?.message, message, field);
    else t.regex(problem?.message ?? '', message, field);
  }
  t.is(submissionProblem({ plan, queue: 'fast_lane', priority: -3, input: { a: 1 }, not_before: '2026-12-01T09:30:00Z' }, NOW), undefined);
});

test('the worker reads a fetch:plan reply with the same schema and graph rules, defaults filled in', (t) => {
  const reply = { id: 'run-1', jobs: [job('a')] };
  t.true(planReplyShape.check(reply));
  const read = readPlanReply(reply);
  t.deepEqual(read, { ok: true, plan: { id: 'run-1', dataclip_id: '', jobs: [job('a')], triggers: [], edges: [], starting_node_id: 'a' } });
  t.deepEqual(readPlanReply({ id: 'run-1', jobs: [{ id: 'a' }] }), { ok: false, problem: 'jobs[0].body must be a string' });
  t.deepEqual(readPlanReply([]), { ok: false, problem: 'the plan must be an object' });
  t.deepEqual(readPlanReply({ ...plan, id: 'run-1', edges: [{ id: 'e', source_job_id: 'nobody', target_job_id: 'a' }] }), {
    ok: false,
    problem: 'edges[0].source_job_id names job "nobody", which is not in the plan',
  });
});

test('the socket form of a shape collects every problem by field', (t) => {
  const errors = planBodyShape.problems({ jobs: [{ id: '', body: 1, adaptor: 'x' }], edges: 3 });
  t.deepEqual(errors, { 'jobs[0].id': ['must be a non-empty string'], 'jobs[0].body': ['must be a string'], edges: ['must be a list'] });
  t.is(planGraphProblem({ jobs: [job('a')] }), undefined);
});

test('fields a plan schema does not name are dropped before the server keeps the plan', (t) => {
  const cleaned = planBodyShape.clean({ jobs: [{ ...job('a'), secret_extra: 'x' }], unknown: 1, options: { run_timeout_ms: 5, other: true } } as never);
  t.deepEqual(cleaned, { jobs: [job('a')], options: { run_timeout_ms: 5 } });
});

test('a field without a message of its own never borrows its parent object\'s', (t) => {
  const shape = wireShape(Type.Object({ inner: Type.Object({ count: Type.Integer() }, { message: 'must be an object' }) }, { message: 'must be an object' }));
  t.deepEqual(shape.firstProblem({ inner: { count: 'x' } }), { field: 'inner.count', message: 'must be integer' });
  t.deepEqual(shape.firstProblem({ inner: 4 }), { field: 'inner', message: 'must be an object' });
  t.deepEqual(shape.firstProblem({}, 'payload'), { field: 'payload.inner', message: 'must be an object' });
});
