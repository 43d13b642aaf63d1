/** Workers on PostgreSQL: who connected, when last seen, when gone. */
import type { PostgresConnection } from './postgres-connection.ts';
import type { WorkerRecord } from './store.ts';

export async function upsertWorker(db: PostgresConnection, worker: WorkerRecord): Promise<void> {
  await db.run(
    `INSERT INTO workers (id, name, capacity, queues, connected_at, last_seen_at, disconnected_at) VALUES ($1, $2, $3, $4, $5, $6, NULL)
     ON CONFLICT (id) DO UPDATE SET name = excluded.name, capacity = excluded.capacity, queues = excluded.queues,
       connected_at = excluded.connected_at, last_seen_at = excluded.last_seen_at, disconnected_at = NULL`,
    [worker.id, worker.name, worker.capacity, JSON.stringify(worker.queues), worker.connectedAt, worker.lastSeenAt],
  );
}

export async function touchWorker(db: PostgresConnection, id: string, name: string | null, now: number): Promise<void> {
  await db.run('UPDATE workers SET last_seen_at = $1, name = COALESCE($2, name) WHERE id = $3', [now, name, id]);
}

export async function markWorkerDisconnected(db: PostgresConnection, id: string, now: number): Promise<void> {
  await db.run('UPDATE workers SET disconnected_at = $1, last_seen_at = $1 WHERE id = $2', [now, id]);
}
