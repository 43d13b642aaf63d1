/** A lane's states, the moves between them, and the error an invalid move throws. */
import { LanesError } from '../errors/lanes-error.ts';

export type WorkloopState = 'idle' | 'claiming' | 'waiting' | 'full' | 'stopping' | 'stopped';

/** The moves a lane may make (the states are described at the top of `workloop.ts`). */
export const WORKLOOP_TRANSITIONS: Record<WorkloopState, readonly WorkloopState[]> = {
  idle: ['claiming', 'full', 'stopped'],
  claiming: ['claiming', 'waiting', 'full', 'stopping'],
  waiting: ['claiming', 'full', 'stopping'],
  full: ['claiming', 'stopping'],
  stopping: ['stopped'],
  stopped: [],
};

export class WorkloopStateError extends LanesError {
  constructor(lane: string, from: WorkloopState, to: WorkloopState) {
    super('INVALID_LANE_TRANSITION', `lane ${lane}: invalid transition ${from} → ${to}`);
  }
}
