/**
 * Queues on SQLite: counts by state, the stats `GET /api/queues` shows, the
 * suspended flag, and which queues have runs available now or later.
 */
import type { RunState } from '../../protocol/index.ts';
import type { SqliteConnection } from './sqlite-connection.ts';
import { assembleQueueStats, num, str } from './store-rows.ts';
import type { QueueStats } from './store.ts';

/** Counts of runs by queue and state, for `/metrics`. */
export function countsByQueueAndState(db: SqliteConnection): Array<{ queue: string; state: RunState; count: number }> {
  return db.all('SELECT queue, state, COUNT(*) AS n FROM runs GROUP BY queue, state').map((row) => ({
    queue: str(row, 'queue'),
    state: str(row, 'state') as RunState,
    count: num(row, 'n'),
  }));
}

/** Queues that hold runs or were suspended, with counts and the oldest available run. */
export function queueStats(db: SqliteConnection): QueueStats[] {
  return assembleQueueStats(
    db.all('SELECT name, suspended FROM queues'),
    countsByQueueAndState(db),
    db.all(`SELECT queue, MIN(enqueued_at) AS oldest FROM runs WHERE state = 'available' GROUP BY queue`),
  );
}

export function setQueueSuspended(db: SqliteConnection, name: string, suspended: boolean, now: number): void {
  db.run(
    'INSERT INTO queues (name, suspended, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET suspended = excluded.suspended, updated_at = excluded.updated_at',
    name, suspended ? 1 : 0, now,
  );
}

export function isQueueSuspended(db: SqliteConnection, name: string): boolean {
  return num(db.get('SELECT COUNT(*) AS n FROM queues WHERE name = ? AND suspended = 1', name) ?? { n: 0 }, 'n') > 0;
}

/** Queues holding runs that are available now (used to notify workers after a resume or a restart). */
export function queuesWithAvailableRuns(db: SqliteConnection, now: number): string[] {
  return db.all(`SELECT DISTINCT queue FROM runs WHERE state = 'available' AND available_at <= ?`, now).map((row) => str(row, 'queue'));
}

/** Available runs still waiting out a retry backoff: when each becomes claimable. */
export function pendingRetries(db: SqliteConnection, now: number): Array<{ id: string; queue: string; availableAt: number }> {
  return db.all(`SELECT id, queue, available_at FROM runs WHERE state = 'available' AND available_at > ?`, now).map((row) => ({
    id: str(row, 'id'),
    queue: str(row, 'queue'),
    availableAt: num(row, 'available_at'),
  }));
}
