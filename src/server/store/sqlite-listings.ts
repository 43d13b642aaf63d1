/**
 * Read-only listings on SQLite for the API and the dashboard: a run's
 * attempts, the runs each worker holds, recent attempts per lane and
 * recent completions per queue.
 */
import type { SqliteConnection } from './sqlite-connection.ts';
import { byClaim, laneAttemptColumns, num, str, toAttempt, toLaneAttempt } from './store-rows.ts';
import type { AttemptRecord, LaneAttempt } from './store.ts';

export function getAttempts(db: SqliteConnection, runId: string): AttemptRecord[] {
  return db.all('SELECT * FROM run_attempts WHERE run_id = ? ORDER BY attempt', runId).map(toAttempt);
}

/** Runs per worker that are claimed or started, for `GET /api/workers`. */
export function activeRunsByWorker(db: SqliteConnection): Map<string, string[]> {
  const result = new Map<string, string[]>();
  for (const row of db.all(`SELECT id, worker_id FROM runs WHERE state IN ('claimed', 'started') AND worker_id IS NOT NULL ORDER BY seq`)) {
    const workerId = str(row, 'worker_id');
    const list = result.get(workerId) ?? [];
    list.push(str(row, 'id'));
    result.set(workerId, list);
  }
  return result;
}

export function recentAttempts(db: SqliteConnection, since: number, limit: number): LaneAttempt[] {
  const open = db.all(`${laneAttemptColumns(true)} WHERE a.finished_at IS NULL`).map(toLaneAttempt);
  const ended = db.all(`${laneAttemptColumns(false)} WHERE a.claimed_at >= ? AND a.finished_at IS NOT NULL ORDER BY a.claimed_at DESC LIMIT ?`, since, limit).map(toLaneAttempt);
  return byClaim(open, ended);
}

export function finishedSince(db: SqliteConnection, since: number): Map<string, number> {
  const rows = db.all('SELECT r.queue, COUNT(*) AS n FROM run_attempts a JOIN runs r ON r.id = a.run_id WHERE a.finished_at >= ? GROUP BY r.queue', since);
  return new Map(rows.map((row) => [str(row, 'queue'), num(row, 'n')]));
}
