import test from 'ava';
import { CHILD_MEMORY_MB, MemoryPlanError, WORKER_MEMORY_MB, planMemory } from '../../src/lanes/memory-plan.ts';
import { parseWorkloops } from '../../src/lanes/parse-workloops.ts';

const lanes = (text: string) => parseWorkloops(text).lanes;

test('without a ceiling each lane has capacity × --run-memory and runs are capped at --run-memory (today’s rule)', (t) => {
  const plan = planMemory({ lanes: lanes('fast_lane:1 manual>*:4'), runMemoryMb: 500, maxMemoryMb: null, spareChildren: 1 });
  t.false(plan.bounded);
  t.is(plan.ceilingMb, 2500);
  t.is(plan.overheadMb, 0);
  t.deepEqual(plan.lanes, [
    { lane: 'fast_lane:1', memoryMb: 500, defaultRunMb: 500, largestRunMb: 500 },
    { lane: 'manual>*:4', memoryMb: 2000, defaultRunMb: 500, largestRunMb: 500 },
  ]);
  t.is(plan.largestRunMb, 500);
});

test('a ceiling pays the worker and every child first, then "@" lanes, then splits the rest by slots', (t) => {
  const plan = planMemory({ lanes: lanes('fast_lane:1@128 manual>*:2 default:1'), runMemoryMb: 300, maxMemoryMb: 3000, spareChildren: 1 });
  const overhead = WORKER_MEMORY_MB + 5 * CHILD_MEMORY_MB;
  t.is(plan.overheadMb, overhead);
  const rest = 3000 - overhead - 128;
  t.deepEqual(
    plan.lanes.map((lane) => [lane.lane, lane.memoryMb, lane.defaultRunMb]),
    [
      ['fast_lane:1@128', 128, 128],
      ['manual>*:2', Math.floor((rest * 2) / 3), 300],
      ['default:1', Math.floor(rest / 3), 300],
    ],
  );
  const total = plan.overheadMb + plan.lanes.reduce((sum, lane) => sum + lane.memoryMb, 0);
  t.true(total <= 3000, `the parts (${total} MB) stay under the ceiling`);
  t.is(plan.largestRunMb, Math.floor((rest * 2) / 3));
});

test('a ceiling that leaves a shared lane less than one run, or the "@" lanes more than there is, is refused with the numbers', (t) => {
  const small = t.throws(() => planMemory({ lanes: lanes('fast_lane:1 manual>*:4'), runMemoryMb: 500, maxMemoryMb: 2048, spareChildren: 1 }), { instanceOf: MemoryPlanError });
  t.regex(small.message, /--max-memory 2048 MB gives lane "fast_lane:1" 185 MB, less than one run of --run-memory 500 MB \(worker 160 MB \+ 6 children × 160 MB/);
  const over = t.throws(() => planMemory({ lanes: lanes('a:1@900 b:1'), runMemoryMb: 100, maxMemoryMb: 1000, spareChildren: 0 }), { instanceOf: MemoryPlanError });
  t.regex(over.message, /leaves 520 MB for runs .* the lanes ask for 900 MB/);
  const tiny = t.throws(() => planMemory({ lanes: lanes('a:1@8'), runMemoryMb: 100, maxMemoryMb: null, spareChildren: 0 }), { instanceOf: MemoryPlanError });
  t.regex(tiny.message, /lane "a:1@8" has 8 MB, less than the smallest run \(32 MB\)/);
});
