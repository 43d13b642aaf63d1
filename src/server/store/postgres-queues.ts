/**
 * Queues on PostgreSQL: counts by state, the stats `GET /api/queues` shows,
 * the suspended flag, and which queues have runs available now or later.
 */
import type { RunState } from '../../protocol/index.ts';
import type { PostgresConnection } from './postgres-connection.ts';
import { assembleQueueStats, num, str } from './store-rows.ts';
import type { QueueStats } from './store.ts';

export async function countsByQueueAndState(db: PostgresConnection): Promise<Array<{ queue: string; state: RunState; count: number }>> {
  return (await db.all('SELECT queue, state, COUNT(*) AS n FROM runs GROUP BY queue, state')).map((row) => ({
    queue: str(row, 'queue'),
    state: str(row, 'state') as RunState,
    count: num(row, 'n'),
  }));
}

export async function queueStats(db: PostgresConnection): Promise<QueueStats[]> {
  return assembleQueueStats(
    await db.all('SELECT name, suspended FROM queues'),
    await countsByQueueAndState(db),
    await db.all(`SELECT queue, MIN(enqueued_at) AS oldest FROM runs WHERE state = 'available' GROUP BY queue`),
  );
}

export async function setQueueSuspended(db: PostgresConnection, name: string, suspended: boolean, now: number): Promise<void> {
  await db.run(
    'INSERT INTO queues (name, suspended, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET suspended = excluded.suspended, updated_at = excluded.updated_at',
    [name, suspended ? 1 : 0, now],
  );
}

export async function isQueueSuspended(db: PostgresConnection, name: string): Promise<boolean> {
  return (await db.get('SELECT 1 AS yes FROM queues WHERE name = $1 AND suspended = 1', [name])) !== undefined;
}

export async function queuesWithAvailableRuns(db: PostgresConnection, now: number): Promise<string[]> {
  return (await db.all(`SELECT DISTINCT queue FROM runs WHERE state = 'available' AND available_at <= $1`, [now])).map((row) => str(row, 'queue'));
}

export async function pendingRetries(db: PostgresConnection, now: number): Promise<Array<{ id: string; queue: string; availableAt: number }>> {
  return (await db.all(`SELECT id, queue, available_at FROM runs WHERE state = 'available' AND available_at > $1`, [now])).map((row) => ({
    id: str(row, 'id'),
    queue: str(row, 'queue'),
    availableAt: num(row, 'available_at'),
  }));
}
