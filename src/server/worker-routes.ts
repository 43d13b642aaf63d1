/** `GET /api/workers`: the connected workers, their lanes and the runs each holds. */
import type { ServerResponse } from 'node:http';
import type { HttpApiDeps } from './http-api-deps.ts';
import { sendJson } from './http-json.ts';

export async function listWorkers(deps: HttpApiDeps, res: ServerResponse): Promise<void> {
  const active = await deps.store.activeRunsByWorker();
  const workers = deps.registry.list().map((worker) => ({
    id: worker.workerId,
    connection_id: worker.connectionId,
    name: worker.name,
    capacity: worker.capacity,
    lanes: worker.laneList.map((lane) => ({ chain: lane.chain, slots: lane.slots })),
    lanes_memory_mb: worker.lanesMemoryMb,
    memory_ceiling_mb: worker.memoryCeilingMb,
    heartbeats: worker.heartbeats,
    connected_at: new Date(worker.connectedAt).toISOString(),
    active_runs: active.get(worker.workerId) ?? [],
  }));
  sendJson(res, 200, { workers });
}
