/**
 * `run-start` means "the run's thread is executing it": it is emitted when
 * the thread has taken the run, not when the engine was handed it. A run
 * waiting for a free child has not started.
 */
import test from 'ava';
import { job, plan, request, startEngine } from './helpers.ts';
import type { EngineEvent } from '../../src/engine/index.ts';

async function until(check: () => boolean, deadlineMs = 15_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met before the deadline');
    await new Promise((r) => setTimeout(r, 20));
  }
}

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
  await until(() => asked);
  // Give the second run every chance to (wrongly) report a start while it waits for the child.
  await until(() => engine.stats().activeRuns === 2);
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
