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
