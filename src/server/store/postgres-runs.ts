/**
 * Runs on PostgreSQL: submission (the run and its input dataclip), reads by
 * id, idempotency key and page, the webhook response, a dead letter's retry
 * and retention's batched delete.
 */
import { randomUUID } from 'node:crypto';
import type { RunPlan, WebhookResponse } from '../../protocol/index.ts';
import { ServerError } from '../server-error.ts';
import type { PostgresConnection } from './postgres-connection.ts';
import { str, toRun } from './store-rows.ts';
import type { NewRun, RunFilter, RunRecord } from './store.ts';

export function insertRun(db: PostgresConnection, input: NewRun): Promise<RunRecord> {
  return db.transaction(async (tx) => {
    const dataclipId = randomUUID();
    await tx.run('INSERT INTO dataclips (id, run_id, type, body, created_at) VALUES ($1, $2, $3, $4, $5)', [dataclipId, input.id, 'input', input.inputJson, input.now]);
    const plan: RunPlan = { ...input.plan, id: input.id, dataclip_id: dataclipId };
    const row = await tx.get(
      `INSERT INTO runs (id, queue, priority, state, max_attempts, idempotency_key, plan, dataclip_id, run_timeout_ms, created_at, enqueued_at, available_at)
       VALUES ($1, $2, $3, 'available', $4, $5, $6, $7, $8, $9, $9, $10) RETURNING *`,
      [input.id, input.queue, input.priority, input.maxAttempts, input.idempotencyKey, JSON.stringify(plan), dataclipId, input.runTimeoutMs, input.now, input.notBefore ?? input.now],
    );
    if (!row) throw new ServerError('STORE_CONFLICT', 'inserted run vanished');
    return toRun(row);
  });
}

export async function getRun(db: PostgresConnection, id: string): Promise<RunRecord | undefined> {
  const row = await db.get('SELECT * FROM runs WHERE id = $1', [id]);
  return row ? toRun(row) : undefined;
}

export async function getRunByIdempotencyKey(db: PostgresConnection, key: string): Promise<RunRecord | undefined> {
  const row = await db.get('SELECT * FROM runs WHERE idempotency_key = $1', [key]);
  return row ? toRun(row) : undefined;
}

export async function listRuns(db: PostgresConnection, filter: RunFilter): Promise<RunRecord[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown): void => {
    params.push(value);
    where.push(`${sql} $${params.length}`);
  };
  if (filter.queue !== undefined) add('queue =', filter.queue);
  if (filter.state !== undefined) add('state =', filter.state);
  if (filter.deadLetter !== undefined) add('dead_letter =', filter.deadLetter ? 1 : 0);
  if (filter.beforeSeq !== undefined) add('seq <', filter.beforeSeq);
  params.push(filter.limit);
  const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
  return (await db.all(`SELECT * FROM runs ${clause} ORDER BY seq DESC LIMIT $${params.length}`, params)).map(toRun);
}

export async function setWebhookResponseOnce(db: PostgresConnection, runId: string, response: WebhookResponse): Promise<void> {
  await db.run('UPDATE runs SET webhook_response = $1 WHERE id = $2 AND webhook_response IS NULL', [JSON.stringify(response), runId]);
}

export async function retryDeadLetter(db: PostgresConnection, runId: string, now: number): Promise<boolean> {
  return (await db.run(
    `UPDATE runs SET state = 'available', dead_letter = 0, max_attempts = attempts + 1, worker_id = NULL, worker_name = NULL,
       claimed_at = NULL, started_at = NULL, finished_at = NULL, lease_expires_at = NULL, lease_mode = NULL, token_hash = NULL,
       enqueued_at = $1, available_at = $1
     WHERE id = $2 AND dead_letter = 1`,
    [now, runId],
  )) > 0;
}

export function deleteFinishedBefore(db: PostgresConnection, cutoff: number, batch: number): Promise<number> {
  return db.transaction(async (tx) => {
    // SKIP LOCKED: a run another replica is deleting (or anything holds) is left for the next batch.
    const ids = (await tx.all(
      `SELECT id FROM runs WHERE finished_at < $1 AND state NOT IN ('available', 'claimed', 'started') ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [cutoff, batch],
    )).map((row) => str(row, 'id'));
    if (ids.length === 0) return 0;
    for (const table of ['log_lines', 'steps', 'event_replies', 'run_attempts', 'dataclips']) {
      await tx.run(`DELETE FROM ${table} WHERE run_id = ANY($1::text[])`, [ids]);
    }
    await tx.run('DELETE FROM runs WHERE id = ANY($1::text[])', [ids]);
    return ids.length;
  });
}
