/** The worker's memory plan as its lanes hold it, and as its start log line tells it. */
import type { WorkerConfig } from '../config/worker-config.ts';
import { LanesError } from '../errors/lanes-error.ts';
import { LaneMemory } from '../lanes/lane-memory.ts';

/** Each lane's memory, in the order of `config.workloops`. */
export function laneMemories(config: WorkerConfig): LaneMemory[] {
  return config.workloops.map((spec, index) => {
    const plan = config.memory.lanes[index];
    if (plan === undefined) throw new LanesError('INVALID_MEMORY_PLAN', `no memory plan for lane ${spec.id}`);
    // A lane that says "@MB" is bounded even without a ceiling: it asked for it.
    return new LaneMemory(plan, config.memory.bounded || spec.memoryMb !== undefined);
  });
}

/** The memory split for the start log: one field, so the ceiling and its parts are read together. */
export function describeMemory(config: WorkerConfig): Record<string, unknown> {
  const plan = config.memory;
  return {
    bounded: plan.bounded,
    ...(plan.bounded ? { workerMb: plan.workerMb, children: plan.children, childMb: plan.childMb } : {}),
    lanes: Object.fromEntries(plan.lanes.map((lane) => [lane.lane, lane.memoryMb])),
  };
}
