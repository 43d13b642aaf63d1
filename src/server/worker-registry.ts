/**
 * The workers currently joined to `worker:queue`, one entry per connection:
 * their lanes (chains → slots) as declared in the join, and a way to push
 * `work-available` to them. The store keeps the durable record; this is the
 * live view that notifications and `GET /api/workers` need.
 */
import { chainCouldTake } from '../protocol/index.ts';
import type { HandOff } from './held-claims.ts';
import type { HandOffContext } from './run-hand-off.ts';

/** One lane of a connected worker. */
export interface DeclaredLane {
  /** Its queue chain joined with `>`. */
  chain: string;
  slots: number;
}

export interface ConnectedWorker {
  connectionId: string;
  workerId: string;
  name: string | null;
  capacity: number;
  /** Chain (joined with `>`) → slots, as sent in the join payload. */
  lanes: Record<string, number>;
  /** Every lane on its own, in the worker's order: two lanes with one chain stay two. */
  laneList: DeclaredLane[];
  connectedAt: number;
  /** Last join, claim or `run:heartbeat` from it: the dashboard shows its age. */
  lastSeenAt: number;
  /** Set once the worker sent its first `run:heartbeat`: it speaks the extension. */
  heartbeats: boolean;
  /** The worker declared `run_cancel` in its join: it hears of cancelled runs by push. */
  cancels: boolean;
  /** The worker declared `claim_plans` in its join: its claim replies carry each run's plan and input. */
  plans: boolean;
  /** With memory_claims: chain → the lane's memory in MB, as declared in the join; null when memory does not bound its lanes. */
  lanesMemoryMb: Record<string, number> | null;
  /** The worker's memory ceiling in MB, when it declared one. */
  memoryCeilingMb: number | null;
  /**
   * Pushes `work-available`: `{queues}` to a worker that declared
   * `work_queues`, `{}` to any other (or when `queues` is null: every lane looks).
   */
  pushWorkAvailable: (queues: readonly string[] | null) => void;
  /** Pushes `run:cancel` on this connection's `worker:queue`. */
  pushRunCancel: (runId: string) => void;
  /**
   * Work was queued in `queue`: tries this connection's held claims that
   * could take it (`held_claims`, held-claims.ts), one after another.
   * Resolves once they were tried: true when one found the queues drained.
   */
  serveHeldClaims: (queue: string) => Promise<boolean>;
  /** How many of this connection's held claims could take work of `queue`; nothing is tried. */
  heldClaimsFor: (queue: string) => number;
  /**
   * A run of `queue` is being stored in `context`'s transaction: tries this
   * connection's first held claim that could take it there (run-hand-off.ts).
   */
  handOffHeld: (queue: string, context: HandOffContext) => Promise<HandOff | undefined>;
}

/** How many of the worker's lanes could take a run of `queue` (lanes of one chain counted apart). */
export function lanesThatCouldTake(worker: Pick<ConnectedWorker, 'laneList'>, queue: string): number {
  return worker.laneList.filter((lane) => chainCouldTake(lane.chain.split('>'), [queue])).length;
}

/** Whether any lane of the worker could take a run of `queue`. A worker that declared no lanes could take anything. */
export function couldTake(worker: Pick<ConnectedWorker, 'lanes'>, queue: string): boolean {
  const chains = Object.keys(worker.lanes);
  if (chains.length === 0) return true;
  return chains.some((chain) => chainCouldTake(chain.split('>'), [queue]));
}

export class WorkerRegistry {
  readonly #byConnection = new Map<string, ConnectedWorker>();

  add(worker: ConnectedWorker): void {
    this.#byConnection.set(worker.connectionId, worker);
  }

  remove(connectionId: string): void {
    this.#byConnection.delete(connectionId);
  }

  get(connectionId: string): ConnectedWorker | undefined {
    return this.#byConnection.get(connectionId);
  }

  list(): ConnectedWorker[] {
    return [...this.#byConnection.values()];
  }

  get size(): number {
    return this.#byConnection.size;
  }

  /** Every connection of one worker (a worker that reconnected may briefly hold two). */
  byWorker(workerId: string): ConnectedWorker[] {
    return [...this.#byConnection.values()].filter((worker) => worker.workerId === workerId);
  }

  /** Marks every connection of a worker as heartbeating, and seen now. */
  markHeartbeats(workerId: string, now: number): void {
    for (const worker of this.#byConnection.values()) {
      if (worker.workerId !== workerId) continue;
      worker.heartbeats = true;
      worker.lastSeenAt = now;
    }
  }
}
