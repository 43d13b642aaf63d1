/**
 * `run-start` means "the run's thread is executing it": it is emitted when
 * the thread has taken the run, not when the engine was handed it. A run
 * waiting for a free child has not started.
 */
import test from 'ava';
import { job, plan, request, startEngine } from './helpers.ts';
import type { EngineEvent } from '../../src/engine/index.ts';
import { waitFor } from '../server/helpers.ts';

test('a run waiting for a free child has not started; its run-start comes when its thread takes it', async (t) => {
  const engine = await startEngine(t, { poolSize: 1 });
  let release: () => void = () => undefined;
  const barrier = new Promise<void>((r) => (release = r));
  let asked = false;
  // The first run holds the only child until the barrier opens.
  const first = request(plan([job('a', 'fn(s => ({ ...s, data: s.configuration }))', { credential_id: 'c' })]), {
    fetchCredential: async () => {
      asked = true;
      await barrier;
      return { ok: 1 };
    },
  });
  const second = request(plan([job('b', 'fn(s => ({ ...s, data: { first: Date.now() } }))')]));
  const runs = [engine.execute(first.request), engine.execute(second.request)];
  await waitFor(() => asked, { timeoutMs: 15_000, message: 'the first run to ask for its credential' });
  // Give the second run every chance to (wrongly) report a start while it waits for the child.
  await waitFor(() => engine.stats().activeRuns === 2, { timeoutMs: 15_000, message: 'both runs to be active' });
  await new Promise((r) => setImmediate(r));
  t.deepEqual(second.events.map((e) => e.type), [], 'no run-start before a thread has the run');
  const releasedAtMicros = BigInt(Date.now()) * 1000n;
  release();
  const outcomes = await Promise.all(runs);
  t.deepEqual(outcomes.map((o) => o.reason), ['success', 'success']);
  const types = second.events.map((e) => e.type);
  t.is(types[0], 'run-start');
  t.true(types.includes('step-start'));
  const start = second.events[0] as Extract<EngineEvent, { type: 'run-start' }>;
  t.true(BigInt(start.timestamp) >= releasedAtMicros - 2000n, 'stamped after the child was freed');
  t.truthy(start.versions['node'], 'run-start still carries the versions');
  const firstLine = (outcomes[1]?.finalState as { data: { first: number } }).data.first;
  t.true(BigInt(start.timestamp) <= BigInt(firstLine + 2) * 1000n, 'stamped no later than the first line of job code');
});

test('a run that ends before reaching a thread still reports run-start first', async (t) => {
  const engine = await startEngine(t, { poolSize: 1 });
  const bad = request({ ...plan([job('a', 'fn(s => s)')]), starting_node_id: 'nowhere' });
  const outcome = await engine.execute(bad.request);
  t.is(outcome.reason, 'exception');
  t.deepEqual(bad.events.map((e) => e.type), ['run-start', 'run-complete']);
});

test('a job compiled once is handed to later threads compiled; a different body is compiled anew', async (t) => {
  const engine = await startEngine(t, { poolSize: 2 });
  const body = 'fn(s => ({ ...s, data: { n: (s.data.n ?? 0) + 1 } }))';
  for (let i = 0; i < 3; i++) {
    const outcome = await engine.execute(request(plan([job('a', body)])).request);
    t.is(outcome.reason, 'success');
    t.deepEqual(outcome.finalState, { data: { n: 1 } });
  }
  t.deepEqual(engine.stats().compiledJobs, { cached: 1, hits: 2, compiles: 1 }, 'the later threads did not compile the job again');
  const other = await engine.execute(request(plan([job('a', body.replace('+ 1', '+ 2'))])).request);
  t.deepEqual(other.finalState, { data: { n: 2 } }, 'the cache is keyed by the body');
  t.deepEqual(engine.stats().compiledJobs, { cached: 2, hits: 2, compiles: 2 });
});

test('with its adaptor resolved before and a child free, a run is posted to the child within execute(); a new adaptor is resolved first', async (t) => {
  const engine = await startEngine(t, { poolSize: 1 });
  const holder = (runId: string) => engine.stats().children.find((c) => c.runId === runId);
  // The first run of an adaptor waits for the repo to resolve it: no child holds it yet when execute() returns.
  const first = request(plan([job('a', 'fn(s => s)')])).request;
  const firstRun = engine.execute(first);
  t.is(holder(first.runId), undefined, 'a new adaptor is resolved before a child is taken');
  t.is((await firstRun).reason, 'success');
  await waitFor(() => engine.stats().children.every((c) => c.state === 'idle'), { timeoutMs: 15_000, message: 'the child to be idle again' });
  // The second run of that adaptor goes to the child in the same call: nothing on its way waits a turn.
  const second = request(plan([job('b', 'fn(s => ({ ...s, data: { second: true } }))')])).request;
  const secondRun = engine.execute(second);
  t.is(holder(second.runId)?.state, 'busy', 'posted before execute() returned');
  const outcome = await secondRun;
  t.is(outcome.reason, 'success');
  t.deepEqual(outcome.finalState, { data: { second: true } });
});
