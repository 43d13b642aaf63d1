/**
 * Read-only listings on PostgreSQL for the API and the dashboard: a run's
 * attempts, the runs each worker holds, recent attempts per lane and recent
 * completions per queue.
 */
import type { PostgresConnection } from './postgres-connection.ts';
import { byClaim, laneAttemptColumns, num, str, toAttempt, toLaneAttempt } from './store-rows.ts';
import type { AttemptRecord, LaneAttempt } from './store.ts';

export async function getAttempts(db: PostgresConnection, runId: string): Promise<AttemptRecord[]> {
  return (await db.all('SELECT * FROM run_attempts WHERE run_id = $1 ORDER BY attempt', [runId])).map(toAttempt);
}

export async function activeRunsByWorker(db: PostgresConnection): Promise<Map<string, string[]>> {
  const result = new Map<string, string[]>();
  for (const row of await db.all(`SELECT id, worker_id FROM runs WHERE state IN ('claimed', 'started') AND worker_id IS NOT NULL ORDER BY seq`)) {
    const workerId = str(row, 'worker_id');
    const list = result.get(workerId) ?? [];
    list.push(str(row, 'id'));
    result.set(workerId, list);
  }
  return result;
}

export async function recentAttempts(db: PostgresConnection, since: number, limit: number): Promise<LaneAttempt[]> {
  const open = (await db.all(`${laneAttemptColumns(true)} WHERE a.finished_at IS NULL`)).map(toLaneAttempt);
  const ended = (await db.all(`${laneAttemptColumns(false)} WHERE a.claimed_at >= $1 AND a.finished_at IS NOT NULL ORDER BY a.claimed_at DESC LIMIT $2`, [since, limit])).map(toLaneAttempt);
  return byClaim(open, ended);
}

export async function finishedSince(db: PostgresConnection, since: number): Promise<Map<string, number>> {
  const rows = await db.all('SELECT r.queue, COUNT(*) AS n FROM run_attempts a JOIN runs r ON r.id = a.run_id WHERE a.finished_at >= $1 GROUP BY r.queue', [since]);
  return new Map(rows.map((row) => [str(row, 'queue'), num(row, 'n')]));
}
