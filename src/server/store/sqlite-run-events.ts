/**
 * What a run reports on SQLite: dataclips, steps, log lines and the replies
 * kept for idempotent channel events.
 */
import { randomUUID } from 'node:crypto';
import type { SqliteConnection } from './sqlite-connection.ts';
import { optStr, str, toLog, toStep } from './store-rows.ts';
import type { DataclipRecord, LogRecord, NewLogLine, NewStep, StepOutcome, StepRecord } from './store.ts';

export function insertDataclip(db: SqliteConnection, id: string, runId: string, type: string, body: string, now: number): void {
  db.run('INSERT OR IGNORE INTO dataclips (id, run_id, type, body, created_at) VALUES (?, ?, ?, ?, ?)', id, runId, type, body, now);
}

export function getDataclip(db: SqliteConnection, id: string): DataclipRecord | undefined {
  const row = db.get('SELECT id, run_id, body FROM dataclips WHERE id = ?', id);
  return row ? { id: str(row, 'id'), runId: optStr(row, 'run_id'), body: str(row, 'body') } : undefined;
}

export function getStep(db: SqliteConnection, stepId: string): (StepRecord & { runId: string }) | undefined {
  const row = db.get('SELECT * FROM steps WHERE id = ?', stepId);
  return row ? { ...toStep(row), runId: str(row, 'run_id') } : undefined;
}

export function insertStep(db: SqliteConnection, step: NewStep): void {
  db.run(
    'INSERT INTO steps (id, run_id, attempt, job_id, input_dataclip_id, started_at) VALUES (?, ?, ?, ?, ?, ?)',
    step.id, step.runId, step.attempt, step.jobId, step.inputDataclipId, step.startedAt,
  );
}

export function completeStep(db: SqliteConnection, step: StepOutcome): void {
  db.run(
    `UPDATE steps SET output_dataclip_id = ?, output_dataclip_error = ?, reason = ?, error_type = ?, error_message = ?, mem = ?,
       duration_ms = ?, thread_id = ?, finished_at = ? WHERE id = ?`,
    step.outputDataclipId, step.outputDataclipError, step.reason, step.errorType, step.errorMessage, JSON.stringify(step.mem ?? null),
    step.durationMs, step.threadId, step.finishedAt, step.id,
  );
}

export function getSteps(db: SqliteConnection, runId: string): StepRecord[] {
  return db.all('SELECT * FROM steps WHERE run_id = ? ORDER BY attempt, started_at, rowid', runId).map(toStep);
}

export function insertLog(db: SqliteConnection, line: NewLogLine): string {
  const id = randomUUID();
  db.run(
    'INSERT INTO log_lines (id, run_id, attempt, step_id, level, source, message, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    id, line.runId, line.attempt, line.stepId, line.level, line.source, JSON.stringify(line.message), line.timestamp,
  );
  return id;
}

export function getLogs(db: SqliteConnection, runId: string): LogRecord[] {
  return db.all('SELECT * FROM log_lines WHERE run_id = ? ORDER BY seq', runId).map(toLog);
}

export function getEventReply(db: SqliteConnection, runId: string, key: string): unknown {
  const row = db.get('SELECT reply FROM event_replies WHERE run_id = ? AND key = ?', runId, key);
  return row ? (JSON.parse(str(row, 'reply')) as unknown) : undefined;
}

export function putEventReply(db: SqliteConnection, runId: string, key: string, reply: unknown): void {
  db.run('INSERT OR IGNORE INTO event_replies (run_id, key, reply) VALUES (?, ?, ?)', runId, key, JSON.stringify(reply));
}
