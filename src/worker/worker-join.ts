/**
 * What the worker declares when it joins `worker:queue`: its capacity, its
 * lanes (by chain and one by one), the Lanes extensions it speaks, and, when
 * memory bounds its lanes, what each lane's runs may use.
 */
import type { WorkerConfig } from '../config/worker-config.ts';
import type { LaneMemory } from '../lanes/lane-memory.ts';
import type { LaneSpec } from '../lanes/parse-workloops.ts';
import { CAPABILITY_MEMORY_CLAIMS, LANES_CAPABILITIES } from '../protocol/events.ts';
import type { QueueJoinPayload } from '../protocol/messages.ts';

/** The join payload; `laneMemory` is each lane's memory, in the order of `config.workloops`. */
export function queueJoinPayload(config: WorkerConfig, laneMemory: readonly LaneMemory[]): QueueJoinPayload {
  const bounded = laneMemory.some((memory) => memory.bounded);
  return {
    capacity: config.capacity,
    queues: slotsByChain(config.workloops),
    lanes: config.workloops.map((lane) => ({ queues: [...lane.queues], capacity: lane.capacity })),
    // Declared so a Lanes server leases our runs by heartbeat from the claim on (a lost claim reply
    // is then recovered within its lease); Lightning ignores the field.
    // claim_plans: our claim replies may carry each run's plan and input (claim-reply.ts reads them).
    // work_queues: our work-available pushes name their queues, and only the lanes that could take one wake.
    // memory_claims only when memory bounds our lanes.
    capabilities: LANES_CAPABILITIES.filter((capability) => bounded || capability !== CAPABILITY_MEMORY_CLAIMS),
    // So a Lanes server can tell a run too big for every lane; only when memory bounds the lanes.
    ...(bounded ? { lanes_memory_mb: Object.fromEntries(config.workloops.map((lane, index) => [lane.queues.join('>'), laneMemory[index]?.totalMb ?? 0])) } : {}),
    ...(config.maxMemoryMb === null ? {} : { memory_ceiling_mb: config.maxMemoryMb }),
  };
}

/** Each chain's slots for the join's `queues` map: lanes with one chain are summed, not overwritten. */
function slotsByChain(lanes: readonly LaneSpec[]): Record<string, number> {
  const slots: Record<string, number> = {};
  for (const lane of lanes) {
    const chain = lane.queues.join('>');
    slots[chain] = (slots[chain] ?? 0) + lane.capacity;
  }
  return slots;
}
