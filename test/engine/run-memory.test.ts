/**
 * Each run is held to its own memory limit (docs/memory.md), not one global
 * value: a small run is killed at its own limit even in a thread booted for
 * bigger ones, and a run given more than the default gets it.
 */
import test from 'ava';
import { job, plan, request, startEngine } from './helpers.ts';

/** Holds about `mb` MB of heap in arrays of doubles, 4 MB at a time, then returns. */
const allocate = (mb: number): string =>
  `fn((state) => { const hold = []; for (let i = 0; i < ${mb / 4}; i++) hold.push(new Array(512 * 1024).fill(1.5)); state.held = hold.length; return state; })`;

test('a run is killed at its own limit, below the warm thread it ran in', async (t) => {
  const engine = await startEngine(t, { poolSize: 1, runMemoryLimitMb: 384, maxRunMemoryLimitMb: 512, rssHeadroomMb: 96, rssSampleIntervalMs: 50 });
  const small = request(plan([job('j', allocate(300))]), { limits: { memoryLimitMb: 64, timeoutMs: 120_000 } });
  const outcome = await engine.execute(small.request);
  t.is(outcome.reason, 'kill', JSON.stringify(outcome));
  t.is(outcome.errorType, 'OOMError');
  t.regex(outcome.errorMessage ?? '', /over 160 MB/, 'killed at its own 64 MB + 96 MB headroom, not at the default');
});

test('a run given more than the default limit gets it', async (t) => {
  const engine = await startEngine(t, { poolSize: 1, runMemoryLimitMb: 128, maxRunMemoryLimitMb: 512, rssHeadroomMb: 96, rssSampleIntervalMs: 50 });
  const big = request(plan([job('j', allocate(200))]), { limits: { memoryLimitMb: 480, timeoutMs: 120_000 } });
  const outcome = await engine.execute(big.request);
  t.is(outcome.reason, 'success', JSON.stringify(outcome));
  const capped = request(plan([job('j', allocate(800))]), { limits: { memoryLimitMb: 2048, timeoutMs: 120_000 } });
  const cappedOutcome = await engine.execute(capped.request);
  t.is(cappedOutcome.errorType, 'OOMError', 'a limit above the largest a lane takes is capped to it');
});

test('busy children are sampled on their own fast timer while runs are active: Buffers outside the heap are caught by it', async (t) => {
  // The idle sampler is as good as off: only the busy one can catch this run.
  const engine = await startEngine(t, { poolSize: 1, runMemoryLimitMb: 128, rssHeadroomMb: 96, rssSampleIntervalMs: 600_000, busyRssSampleIntervalMs: 20 });
  const hog = request(plan([job('j', 'fn((state) => { const hog = []; for (;;) hog.push(Buffer.alloc(8 * 1024 * 1024, 1)); })')]), { limits: { memoryLimitMb: 128, timeoutMs: 120_000 } });
  const outcome = await engine.execute(hog.request);
  t.is(outcome.errorType, 'OOMError', JSON.stringify(outcome));
  const reached = Number(/reached (\d+) MB RSS/.exec(outcome.errorMessage ?? '')?.[1]);
  t.log(`killed at ${reached} MB RSS against a ceiling of 224 MB`);
  // The message rounds the RSS down to whole MB, so a kill just past 224 MB reads "224".
  t.true(reached >= 224);
});

test('idle children are retired after the timeout down to the warm minimum, and forked again when runs need them', async (t) => {
  const engine = await startEngine(t, { poolSize: 3, minWarmChildren: 1, idleChildTimeoutMs: 300 });
  const deadline = (ms: number) => Date.now() + ms;
  const until = async (condition: () => boolean, ms: number, message: string): Promise<void> => {
    const end = deadline(ms);
    while (!condition()) {
      if (Date.now() > end) throw new Error(message);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  await until(() => engine.childPids().length === 1, 60_000, 'the pool to shrink to its warm minimum');
  // Three runs at once: the pool forks back up to its size to take them.
  const held = 'fn((state) => new Promise((resolve) => setTimeout(() => resolve(state), 8000)))';
  let busyAtOnce = 0;
  const sampler = setInterval(() => {
    busyAtOnce = Math.max(busyAtOnce, engine.stats().children.filter((child) => child.state === 'busy').length);
  }, 20);
  t.teardown(() => clearInterval(sampler));
  const outcomes = await Promise.all([0, 1, 2].map(() => engine.execute(request(plan([job('j', held)]), { limits: { timeoutMs: 120_000 } }).request)));
  clearInterval(sampler);
  t.deepEqual(outcomes.map((outcome) => outcome.reason), ['success', 'success', 'success']);
  t.is(busyAtOnce, 3, 'the pool grew back to its size: three runs ran at once');
  await until(() => engine.childPids().length === 1, 60_000, 'the pool to shrink again');
  t.is(engine.stats().children.length, 1);
});
