/**
 * Builds the dashboard's picture (`DashboardSnapshot`) from the live worker
 * registry and three small store reads, made side by side: attempts in flight and recent ones
 * (with the lane that claimed each), queue stats, and attempts ended in the
 * last minute.
 */
import type {
  DashboardAttempt,
  DashboardLane,
  DashboardQueue,
  DashboardSnapshot,
  DashboardTimelineRow,
  DashboardWorker,
} from '../protocol/index.ts';
import { WILDCARD } from '../protocol/index.ts';
import type { LaneAttempt, Store } from './store/store.ts';
import type { WorkerRegistry } from './worker-registry.ts';

/** How far back the timeline reaches. */
export const TIMELINE_WINDOW_MS = 5 * 60_000;
/** At most this many ended attempts on the timeline (the newest); attempts in flight are always there. */
export const TIMELINE_MAX_ENDED = 500;

function attemptView(attempt: LaneAttempt): DashboardAttempt {
  return {
    run_id: attempt.runId,
    attempt: attempt.attempt,
    queue: attempt.queue,
    state: attempt.state,
    step: attempt.step,
    memory_mb: attempt.memoryMb,
    claimed_at: attempt.claimedAt,
    started_at: attempt.startedAt,
    finished_at: attempt.finishedAt,
  };
}

/**
 * The chain an attempt is drawn on: the one that claimed it when the worker
 * still has that lane; otherwise (claimed before lanes were recorded, or by a
 * worker that has since rejoined with other lanes) the first lane that names
 * its queue, then the first that ends in `*`.
 */
export function placeAttempt(chains: readonly string[], lane: string | null, queue: string): string | undefined {
  if (lane !== null && chains.includes(lane)) return lane;
  return chains.find((chain) => chain.split('>').includes(queue)) ?? chains.find((chain) => chain.split('>').includes(WILDCARD));
}

export async function buildDashboardSnapshot(store: Store, registry: WorkerRegistry, now: number): Promise<DashboardSnapshot> {
  const since = now - TIMELINE_WINDOW_MS;
  const [attempts, perMinute, queueStats] = await Promise.all([store.recentAttempts(since, TIMELINE_MAX_ENDED), store.finishedSince(now - 60_000), store.queueStats()]);

  const workers: DashboardWorker[] = [];
  const lanesByWorker = new Map<string, DashboardLane[]>();
  for (const connected of registry.list()) {
    // A worker id with two connections (a reconnect racing the old socket) is drawn once, as its newest.
    const existing = workers.findIndex((worker) => worker.id === connected.workerId);
    // Every lane on its own: two lanes with one chain are two rows of slots.
    const lanes = connected.laneList.map(({ chain, slots }): DashboardLane => ({ chain, slots, memory_mb: connected.lanesMemoryMb?.[chain] ?? null, runs: [] }));
    const worker: DashboardWorker = {
      id: connected.workerId,
      name: connected.name,
      capacity: connected.capacity,
      memory_ceiling_mb: connected.memoryCeilingMb,
      connected_at: connected.connectedAt,
      last_seen_at: connected.lastSeenAt,
      lanes,
    };
    if (existing >= 0) {
      if ((workers[existing]?.connected_at ?? 0) > connected.connectedAt) continue;
      workers[existing] = worker;
    } else {
      workers.push(worker);
    }
    lanesByWorker.set(connected.workerId, lanes);
  }

  const rows = new Map<string, DashboardTimelineRow>();
  const names = new Map(workers.map((worker) => [worker.id, worker.name]));
  for (const attempt of attempts) {
    const workerId = attempt.workerId ?? '';
    const lanes = lanesByWorker.get(workerId) ?? [];
    const chain = placeAttempt(lanes.map((lane) => lane.chain), attempt.lane, attempt.queue) ?? attempt.lane ?? WILDCARD;
    const view = attemptView(attempt);
    if (attempt.finishedAt === null) {
      // Of two lanes with one chain, the first with a free slot shows the run.
      const sameChain = lanes.filter((lane) => lane.chain === chain);
      (sameChain.find((lane) => lane.runs.length < lane.slots) ?? sameChain[0])?.runs.push(view);
    }
    const key = `${workerId}\u0000${chain}`;
    let row = rows.get(key);
    if (!row) {
      row = { worker: workerId, worker_name: names.get(workerId) ?? null, chain, attempts: [] };
      rows.set(key, row);
    }
    row.attempts.push(view);
  }
  // Every lane of a connected worker has a row, busy or not, in the order the worker declared them.
  for (const worker of workers) {
    for (const lane of worker.lanes) {
      const key = `${worker.id}\u0000${lane.chain}`;
      if (!rows.has(key)) rows.set(key, { worker: worker.id, worker_name: worker.name, chain: lane.chain, attempts: [] });
    }
  }
  // Connected workers first, in order, each with its lanes as declared; then workers that have gone.
  const order = (row: DashboardTimelineRow): [number, number] => {
    const index = workers.findIndex((worker) => worker.id === row.worker);
    if (index < 0) return [workers.length, 0];
    const lane = workers[index]?.lanes.findIndex((candidate) => candidate.chain === row.chain) ?? -1;
    return [index, lane < 0 ? Number.MAX_SAFE_INTEGER : lane];
  };
  const timeline = [...rows.values()].sort((a, b) => {
    const [workerA, laneA] = order(a);
    const [workerB, laneB] = order(b);
    return workerA - workerB || a.worker.localeCompare(b.worker) || laneA - laneB || a.chain.localeCompare(b.chain);
  });

  const queues = queueStats.map((stats): DashboardQueue => ({
    name: stats.name,
    suspended: stats.suspended,
    depth: stats.counts.available ?? 0,
    running: (stats.counts.claimed ?? 0) + (stats.counts.started ?? 0),
    oldest_available_at: stats.oldestAvailableAt,
    per_minute: perMinute.get(stats.name) ?? 0,
    counts: stats.counts,
  }));

  return { now, since, workers, queues, timeline };
}
