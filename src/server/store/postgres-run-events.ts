/**
 * What a run reports on PostgreSQL: dataclips, steps, log lines and the
 * replies kept for idempotent channel events.
 */
import { randomUUID } from 'node:crypto';
import type { PostgresConnection } from './postgres-connection.ts';
import { optStr, str, toLog, toStep } from './store-rows.ts';
import type { DataclipRecord, LogRecord, NewLogLine, NewStep, StepOutcome, StepRecord } from './store.ts';

export async function insertDataclip(db: PostgresConnection, id: string, runId: string, type: string, body: string, now: number): Promise<void> {
  await db.run('INSERT INTO dataclips (id, run_id, type, body, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING', [id, runId, type, body, now]);
}

export async function getDataclip(db: PostgresConnection, id: string): Promise<DataclipRecord | undefined> {
  const row = await db.get('SELECT id, run_id, body FROM dataclips WHERE id = $1', [id]);
  return row ? { id: str(row, 'id'), runId: optStr(row, 'run_id'), body: str(row, 'body') } : undefined;
}

export async function getStep(db: PostgresConnection, stepId: string): Promise<(StepRecord & { runId: string }) | undefined> {
  const row = await db.get('SELECT * FROM steps WHERE id = $1', [stepId]);
  return row ? { ...toStep(row), runId: str(row, 'run_id') } : undefined;
}

export async function insertStep(db: PostgresConnection, step: NewStep): Promise<void> {
  await db.run(
    'INSERT INTO steps (id, run_id, attempt, job_id, input_dataclip_id, started_at) VALUES ($1, $2, $3, $4, $5, $6)',
    [step.id, step.runId, step.attempt, step.jobId, step.inputDataclipId, step.startedAt],
  );
}

export async function completeStep(db: PostgresConnection, step: StepOutcome): Promise<void> {
  await db.run(
    `UPDATE steps SET output_dataclip_id = $1, output_dataclip_error = $2, reason = $3, error_type = $4, error_message = $5, mem = $6,
       duration_ms = $7, thread_id = $8, finished_at = $9 WHERE id = $10`,
    [step.outputDataclipId, step.outputDataclipError, step.reason, step.errorType, step.errorMessage, JSON.stringify(step.mem ?? null),
      step.durationMs, step.threadId, step.finishedAt, step.id],
  );
}

export async function getSteps(db: PostgresConnection, runId: string): Promise<StepRecord[]> {
  return (await db.all('SELECT * FROM steps WHERE run_id = $1 ORDER BY attempt, started_at, seq', [runId])).map(toStep);
}

export async function insertLog(db: PostgresConnection, line: NewLogLine): Promise<string> {
  const id = randomUUID();
  await db.run(
    'INSERT INTO log_lines (id, run_id, attempt, step_id, level, source, message, timestamp) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
    [id, line.runId, line.attempt, line.stepId, line.level, line.source, JSON.stringify(line.message), line.timestamp],
  );
  return id;
}

export async function getLogs(db: PostgresConnection, runId: string): Promise<LogRecord[]> {
  return (await db.all('SELECT * FROM log_lines WHERE run_id = $1 ORDER BY seq', [runId])).map(toLog);
}

export async function getEventReply(db: PostgresConnection, runId: string, key: string): Promise<unknown> {
  const row = await db.get('SELECT reply FROM event_replies WHERE run_id = $1 AND key = $2', [runId, key]);
  return row ? (JSON.parse(str(row, 'reply')) as unknown) : undefined;
}

export async function putEventReply(db: PostgresConnection, runId: string, key: string, reply: unknown): Promise<void> {
  await db.run('INSERT INTO event_replies (run_id, key, reply) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [runId, key, JSON.stringify(reply)]);
}
