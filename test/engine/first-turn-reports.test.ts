/**
 * A run's reports from its first turn are held by its session until that
 * turn ends (first-turn-reports.ts), so the worker and the server stay off
 * the cores while the job gets to its first line; they are never lost and
 * keep their order, and a first turn that computes for long still shows its
 * step soon.
 */
import test from 'ava';
import { FIRST_TURN_HOLD_MS, FirstTurnReports } from '../../src/engine/first-turn-reports.ts';
import type { EngineEvent } from '../../src/engine/index.ts';
import { job, plan, request, startEngine } from './helpers.ts';

const started = (runId: string): EngineEvent => ({ type: 'run-start', timestamp: runId, versions: {} });

test('held until released, in order; sent at once after; released once', (t) => {
  const sent: EngineEvent[] = [];
  const reports = new FirstTurnReports<EngineEvent>((m) => sent.push(m), 60_000);
  reports.report(started('a'));
  reports.report(started('b'));
  t.deepEqual(sent, [], 'held during the first turn');
  reports.release();
  t.deepEqual(sent, [started('a'), started('b')], 'in the order they came');
  reports.report(started('c'));
  t.deepEqual(sent.length, 3, 'after the first turn, at once');
  reports.release();
  t.is(sent.length, 3, 'a second release sends nothing again');
});

test('released by the hold bound when the first turn does not end', async (t) => {
  const sent: EngineEvent[] = [];
  const reports = new FirstTurnReports<EngineEvent>((m) => sent.push(m), 30);
  reports.report(started('a'));
  await new Promise((r) => setTimeout(r, 200));
  t.deepEqual(sent, [started('a')]);
});

test('a job computing in its first turn still shows its start within the hold bound, long before it ends', async (t) => {
  const engine = await startEngine(t, { poolSize: 1 });
  const seenAt = new Map<string, number>();
  const recorded = request(plan([job('a', 'fn(s => { const end = Date.now() + 1500; while (Date.now() < end); return s; })')]), {
    onEvent: (e: EngineEvent) => {
      if (!seenAt.has(e.type)) seenAt.set(e.type, performance.now());
    },
  });
  const outcome = await engine.execute(recorded.request);
  t.is(outcome.reason, 'success');
  const stepStart = seenAt.get('step-start');
  const runEnd = seenAt.get('run-complete') ?? performance.now();
  t.truthy(stepStart, 'the step started');
  // Held in the thread, or in the child until the turn ends, it would come with the end.
  t.true(runEnd - (stepStart ?? runEnd) > 1000, `step-start ${Math.round(runEnd - (stepStart ?? runEnd))} ms before the end (hold bound ${FIRST_TURN_HOLD_MS} ms)`);
});

test('a run killed in its first turn reports its start and its step before its end', async (t) => {
  const engine = await startEngine(t, { poolSize: 1 });
  // A first run, so that the timed run's thread is a warm spare: its time-out counts from the dispatch.
  t.is((await engine.execute(request(plan([job('w', 'fn(s => s)')])).request)).reason, 'success');
  const recorded = request(plan([job('a', 'fn(s => { for (;;); })')]), { limits: { timeoutMs: 1000 } });
  const outcome = await engine.execute(recorded.request);
  t.is(outcome.errorType, 'TimeoutError');
  const types = recorded.events.map((e) => e.type).filter((type) => type !== 'log');
  t.deepEqual(types, ['run-start', 'step-start', 'step-complete', 'run-complete']);
  const complete = recorded.events.find((e) => e.type === 'step-complete');
  t.is(complete?.type === 'step-complete' ? complete.errorType : undefined, 'TimeoutError');
});
