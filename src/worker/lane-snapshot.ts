/** One lane as the worker reports it (`Worker.lanes`, the health server's `/ready` body). */
import type { Workloop } from '../lanes/workloop.ts';

export interface LaneSnapshot {
  id: string;
  queues: readonly string[];
  capacity: number;
  active: number;
  inFlight: number;
  state: string;
  /** The lane's memory for runs and what its runs reserve now, in MB. */
  memoryMb: number;
  memoryReservedMb: number;
}

export function laneSnapshot(lane: Workloop): LaneSnapshot {
  return {
    id: lane.id,
    queues: lane.spec.queues,
    capacity: lane.capacity,
    active: lane.activeCount,
    inFlight: lane.promisedCount,
    state: lane.state,
    memoryMb: lane.memory?.totalMb ?? 0,
    memoryReservedMb: lane.memory?.reservedMb ?? 0,
  };
}
