/**
 * Random but plausible plans thrown at the real engine for a bounded time:
 * random jobs, edges (some to nowhere, some from nowhere, cycles, disabled),
 * conditions (named, JavaScript, broken JavaScript), a start node that may
 * not exist, and bodies that succeed, throw, write errors, do not parse,
 * return odd states, log or return strings over the limits.
 *
 * Every run must end with exactly one `run-complete`, last, with a valid
 * reason; `run-start` comes first; every `step-complete` closes a step that
 * was opened and every opened step is closed. Afterwards a trivial run still
 * succeeds: nothing the fuzz did broke the pool.
 */
import test from 'ava';
import fc from 'fast-check';
import type { EngineEvent } from '../../src/engine/index.ts';
import { EXIT_REASONS } from '../../src/protocol/reasons.ts';
import type { PlanEdge, PlanJob, RunPlan } from '../../src/protocol/index.ts';
import { FIXTURE, job, plan, request, startEngine } from '../engine/helpers.ts';

const FUZZ_MS = 12_000;

const BODIES = [
  'fn((state) => state)',
  'fn((state) => ({ ...state, data: { n: (state.data?.n ?? 0) + 1 } }))',
  "fn(() => { throw new Error('boom'); })",
  "fn(() => { throw 'a string'; })",
  'fn(() => { throw null; })',
  'fn((state) => { state.errors = { x: { type: "Custom", message: "written" } }; return state; })',
  'fn((state) => {',
  'this is not javascript',
  '',
  'fn(() => null)',
  'fn(() => undefined)',
  'fn(() => 42)',
  "fn(() => 'just a string')",
  'fn(() => { const o = { data: {} }; o.self = o; return o; })',
  'fn(() => ({ data: { big: 10n } }))',
  "fn((state) => ({ ...state, big: 'x'.repeat(1_500_000) }))",
  "fn((state) => { console.log('y'.repeat(1_500_000)); return state; })",
  "fn((state) => { console.log('hello', { a: 1 }, [1, 2]); return state; })",
  'fn((state) => new Promise((resolve) => setTimeout(() => resolve(state), 5)))',
  "fn(() => Promise.reject(new TypeError('rejected')))",
  'fn(() => process.exit(1))',
  'fn((state) => { setTimeout(() => { throw new Error("late"); }, 1); return state; })',
  'fn($.data)',
  'fn((state) => { undefinedFunction(); return state; })',
  'fn(function () { return $.data; })',
  'export default [(s) => s];',
];

const CONDITIONS: Array<PlanEdge['condition'] | undefined> = [
  'always',
  'on_job_success',
  'on_job_failure',
  'state.data && state.data.n > 0',
  '!state.errors',
  'this is not an expression (',
  'throw new Error("in a condition")',
  undefined,
  null,
];

const JOB_IDS = ['a', 'b', 'c', 'd'];

const bodyArb = fc.oneof({ weight: 15, arbitrary: fc.constantFrom(...BODIES) }, { weight: 1, arbitrary: fc.string({ maxLength: 40 }) });

const planArb = fc
  .record({
    jobs: fc.uniqueArray(fc.record({ id: fc.constantFrom(...JOB_IDS), body: bodyArb, adaptor: fc.constantFrom<string | undefined>(FIXTURE, FIXTURE, undefined), named: fc.boolean() }), {
      minLength: 1,
      maxLength: 4,
      selector: (j) => j.id,
    }),
    edges: fc.array(
      fc.record({
        // Indexes into the plan's own jobs (so most edges are plausible), or a node that does not exist.
        source: fc.oneof({ weight: 2, arbitrary: fc.constant('t') }, { weight: 8, arbitrary: fc.nat(3) }, { weight: 1, arbitrary: fc.constant('nowhere') }),
        target: fc.oneof({ weight: 40, arbitrary: fc.nat(3) }, { weight: 1, arbitrary: fc.constant('nowhere') }),
        condition: fc.constantFrom(...CONDITIONS),
        enabled: fc.constantFrom<boolean | undefined>(true, false, undefined),
      }),
      { maxLength: 6 },
    ),
    // Mostly plausible (a trigger that starts the first job), sometimes not.
    entry: fc.integer({ min: 0, max: 9 }).map((n) => n > 0),
    start: fc.oneof({ weight: 30, arbitrary: fc.constant('t') }, { weight: 3, arbitrary: fc.nat(3) }, { weight: 1, arbitrary: fc.constant('missing') }),
    triggers: fc.constantFrom(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 2),
    input: fc.oneof(fc.constant({ data: {} }), fc.jsonValue({ maxDepth: 2 })),
  })
  .map(({ jobs, edges, entry, start, triggers, input }) => {
    const planJobs: PlanJob[] = jobs.map((j) => {
      const out = job(j.id, j.body);
      if (j.adaptor === undefined) delete (out as { adaptor?: string }).adaptor;
      if (j.named) out.name = `job ${j.id}`;
      return out;
    });
    const jobId = (ref: number | string): string => (typeof ref === 'number' ? (planJobs[ref % planJobs.length] as PlanJob).id : ref);
    const planEdges: PlanEdge[] = edges.map((e, i) => {
      const edge: PlanEdge = { id: `e${i}`, target_job_id: jobId(e.target) };
      if (e.source === 't' || e.source === 'nowhere') edge.source_trigger_id = e.source;
      else edge.source_job_id = jobId(e.source);
      if (e.condition !== undefined) edge.condition = e.condition;
      if (e.enabled !== undefined) edge.enabled = e.enabled;
      return edge;
    });
    const first = planJobs[0];
    if (entry && first) planEdges.unshift({ id: 'e-entry', source_trigger_id: 't', target_job_id: first.id, condition: 'always' });
    const p: RunPlan = plan(planJobs, planEdges);
    p.starting_node_id = jobId(start);
    p.triggers = Array.from({ length: triggers }, (_, i) => ({ id: i === 0 ? 't' : `t${i}`, type: 'webhook' }));
    return { plan: p, input };
  });

/** Why the event list is malformed, or null when it is well-ordered. */
function orderProblem(events: readonly EngineEvent[]): string | null {
  if (events[0]?.type !== 'run-start') return `first event is ${events[0]?.type}`;
  if (events.filter((e) => e.type === 'run-start').length !== 1) return 'run-start more than once';
  const completes = events.filter((e) => e.type === 'run-complete');
  if (completes.length !== 1) return `${completes.length} run-complete events`;
  if (events.at(-1)?.type !== 'run-complete') return 'run-complete is not last';
  const open = new Set<string>();
  const closed = new Set<string>();
  for (const e of events) {
    if (e.type === 'step-start') {
      if (open.has(e.stepId) || closed.has(e.stepId)) return `step ${e.stepId} started twice`;
      if (open.size > 0) return `step ${e.stepId} started while ${[...open].join()} was open`;
      open.add(e.stepId);
    } else if (e.type === 'step-complete') {
      if (!open.has(e.stepId)) return `step ${e.stepId} completed without being open`;
      if (!(EXIT_REASONS as readonly string[]).includes(e.reason)) return `step reason ${e.reason}`;
      open.delete(e.stepId);
      closed.add(e.stepId);
    } else if (e.type === 'log' && e.stepId !== undefined && !open.has(e.stepId) && !closed.has(e.stepId)) {
      return `log for unknown step ${e.stepId}`;
    }
  }
  if (open.size > 0) return `steps left open: ${[...open].join()}`;
  return null;
}

test('random plans each end with exactly one well-ordered run-complete, and the engine keeps working', async (t) => {
  const engine = await startEngine(t, { poolSize: 2 });
  let runs = 0;
  const reasons = new Map<string, number>();
  const errorTypes = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(planArb, async ({ plan: p, input }) => {
      const { request: req, events } = request(p, { input, limits: { timeoutMs: 4_000, payloadLimitMb: 1, logPayloadLimitMb: 1 } });
      const outcome = await engine.execute(req);
      runs++;
      reasons.set(outcome.reason, (reasons.get(outcome.reason) ?? 0) + 1);
      errorTypes.set(String(outcome.errorType), (errorTypes.get(String(outcome.errorType)) ?? 0) + 1);
      if (process.env['FUZZ_DEBUG']) console.log(outcome.reason, outcome.errorType, outcome.errorMessage?.slice(0, 100));
      if (!(EXIT_REASONS as readonly string[]).includes(outcome.reason)) throw new Error(`invalid reason ${outcome.reason}`);
      const problem = orderProblem(events);
      if (problem !== null) throw new Error(`${problem}: ${JSON.stringify(events.map((e) => e.type))}`);
      if (events.at(-1) !== outcome && JSON.stringify(events.at(-1)) !== JSON.stringify(outcome)) throw new Error('execute() resolved with another outcome than the last event');
    }),
    { numRuns: 400, interruptAfterTimeLimit: FUZZ_MS, markInterruptAsFailure: false, seed: Number(process.env['FUZZ_SEED'] ?? Date.now() % 2 ** 31) },
  );
  t.log(`${runs} random plans; reasons ${JSON.stringify(Object.fromEntries(reasons))}; error types ${JSON.stringify(Object.fromEntries(errorTypes))}`);
  t.true(runs >= 10, `only ${runs} plans ran in ${FUZZ_MS} ms`);

  const { request: trivial } = request(plan([job('ok', 'fn((state) => ({ ...state, data: { fine: true } }))')]));
  const after = await engine.execute(trivial);
  t.is(after.reason, 'success');
  t.deepEqual(after.finalState, { data: { fine: true } });
});
