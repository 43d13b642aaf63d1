/**
 * What `GET /api/dashboard` answers and `GET /api/events` streams (as `snapshot`
 * events): the live picture the dashboard draws. Times are epoch
 * milliseconds of the server's clock; `now` lets a browser correct for its own.
 * Shared by the server, which builds it, and the dashboard bundle, which reads it.
 */
import type { RunState } from './reasons.ts';

/** A run in a slot, or a bar on the timeline: one attempt of a run. */
export interface DashboardAttempt {
  run_id: string;
  attempt: number;
  queue: string;
  state: RunState;
  /** The job of the step running now, while in flight. */
  step: string | null;
  /** The memory (MB) its lane reserved for it, when lanes carry memory; else null. */
  memory_mb: number | null;
  claimed_at: number;
  started_at: number | null;
  finished_at: number | null;
}

export interface DashboardLane {
  /** The lane's queue preference chain, `manual>*`. */
  chain: string;
  slots: number;
  /** The lane's share of the worker's memory (MB), when its worker declared one; else null. */
  memory_mb: number | null;
  /** Attempts in flight on this lane, oldest claim first; at most `slots` unless the worker overcommits. */
  runs: DashboardAttempt[];
}

export interface DashboardWorker {
  id: string;
  name: string | null;
  capacity: number;
  /** The worker's memory ceiling (MB), when it declared one. */
  memory_ceiling_mb: number | null;
  connected_at: number;
  /** Last join, claim or run heartbeat. */
  last_seen_at: number;
  lanes: DashboardLane[];
}

export interface DashboardQueue {
  name: string;
  suspended: boolean;
  /** Runs waiting to be claimed. */
  depth: number;
  /** Runs claimed or started. */
  running: number;
  oldest_available_at: number | null;
  /** Attempts that ended in the last minute. */
  per_minute: number;
  counts: Partial<Record<RunState, number>>;
}

/** A timeline row: one lane of one worker (the worker may have gone since). */
export interface DashboardTimelineRow {
  worker: string;
  worker_name: string | null;
  chain: string;
  attempts: DashboardAttempt[];
}

export interface DashboardSnapshot {
  now: number;
  /** Start of the timeline window. */
  since: number;
  workers: DashboardWorker[];
  queues: DashboardQueue[];
  timeline: DashboardTimelineRow[];
}
