import test from 'ava';
import { memoryWaitReason } from '../../src/server/memory-wait-reason.ts';
import type { RunRecord } from '../../src/server/store/store.ts';

const run = (plan: unknown, queue = 'default', state: RunRecord['state'] = 'available') => ({ state, queue, plan: plan as RunRecord['plan'] });
const bounded = { lanes: { fast_lane: 1, 'manual>*': 4 }, lanesMemoryMb: { fast_lane: 128, 'manual>*': 1024 } };

test('a waiting run that needs more than every connected lane taking its queue could hold says so', (t) => {
  t.regex(memoryWaitReason(run({ options: { run_memory_limit_mb: 2048 } }), [bounded]) ?? '', /needs 2048 MB .* holds 1024 MB/);
  t.is(memoryWaitReason(run({ options: { run_memory_limit_mb: 1000 } }), [bounded]), null, 'it fits the manual lane');
  t.is(memoryWaitReason(run({ options: { run_memory_limit_mb: 2048 } }, 'default', 'started'), [bounded]), null, 'only waiting runs');
  t.is(memoryWaitReason(run({ options: { run_memory_limit_mb: 2048 } }), [bounded, { lanes: { 'manual>*': 2 }, lanesMemoryMb: null }]), null, 'a lane not bounded by memory could take it');
  t.is(memoryWaitReason(run({ options: { run_memory_limit_mb: 2048 } }), []), null, 'no worker connected: memory is not the reason');
});

test('a malformed stored plan is no reason and no error', (t) => {
  for (const plan of [null, 'x', { options: null }, { options: 'big' }, {}]) t.is(memoryWaitReason(run(plan), [bounded]), null, JSON.stringify(plan));
});
