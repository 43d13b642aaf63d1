/** Workers on SQLite: who connected, when last seen, when gone. */
import type { SqliteConnection } from './sqlite-connection.ts';
import type { WorkerRecord } from './store.ts';

export function upsertWorker(db: SqliteConnection, worker: WorkerRecord): void {
  db.run(
    `INSERT INTO workers (id, name, capacity, queues, connected_at, last_seen_at, disconnected_at) VALUES (?, ?, ?, ?, ?, ?, NULL)
     ON CONFLICT (id) DO UPDATE SET name = excluded.name, capacity = excluded.capacity, queues = excluded.queues,
       connected_at = excluded.connected_at, last_seen_at = excluded.last_seen_at, disconnected_at = NULL`,
    worker.id, worker.name, worker.capacity, JSON.stringify(worker.queues), worker.connectedAt, worker.lastSeenAt,
  );
}

export function touchWorker(db: SqliteConnection, id: string, name: string | null, now: number): void {
  db.run('UPDATE workers SET last_seen_at = ?, name = COALESCE(?, name) WHERE id = ?', now, name, id);
}

export function markWorkerDisconnected(db: SqliteConnection, id: string, now: number): void {
  db.run('UPDATE workers SET disconnected_at = ?, last_seen_at = ? WHERE id = ?', now, now, id);
}
