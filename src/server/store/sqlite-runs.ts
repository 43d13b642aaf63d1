/**
 * Runs on SQLite: submission (the run and its input dataclip), reads by id,
 * idempotency key and page, the webhook response, a dead letter's retry and
 * retention's batched delete.
 */
import { randomUUID } from 'node:crypto';
import type { SQLInputValue } from 'node:sqlite';
import type { RunPlan, WebhookResponse } from '../../protocol/index.ts';
import type { SqliteConnection } from './sqlite-connection.ts';
import { str, toRun } from './store-rows.ts';
import type { NewRun, RunFilter, RunRecord } from './store.ts';

/**
 * Stores a new run and its input dataclip. The record returned is the row
 * as written, made from what was written (reading it back cost a query and a
 * parse of the plan on every submission); the store tests hold it equal to
 * `getRun`'s.
 */
export function insertRun(db: SqliteConnection, input: NewRun): RunRecord {
  return db.transaction(() => {
    const dataclipId = randomUUID();
    db.run('INSERT INTO dataclips (id, run_id, type, body, created_at) VALUES (?, ?, ?, ?, ?)', dataclipId, input.id, 'input', input.inputJson, input.now);
    const plan: RunPlan = { ...input.plan, id: input.id, dataclip_id: dataclipId };
    const planJson = JSON.stringify(plan);
    const availableAt = input.notBefore ?? input.now;
    const seq = db.insert(
      `INSERT INTO runs (id, queue, priority, state, max_attempts, idempotency_key, plan, dataclip_id, run_timeout_ms, created_at, enqueued_at, available_at)
       VALUES (?, ?, ?, 'available', ?, ?, ?, ?, ?, ?, ?, ?)`,
      input.id, input.queue, input.priority, input.maxAttempts, input.idempotencyKey, planJson, dataclipId, input.runTimeoutMs, input.now, input.now, availableAt,
    );
    return {
      id: input.id, queue: input.queue, priority: input.priority, state: 'available', reason: null, errorType: null, errorMessage: null,
      attempts: 0, maxAttempts: input.maxAttempts, deadLetter: false, idempotencyKey: input.idempotencyKey, workerId: null, workerName: null,
      // A copy, as a read would give: the caller's plan is not shared with the record.
      plan: JSON.parse(planJson) as RunPlan,
      dataclipId, runTimeoutMs: input.runTimeoutMs, seq, createdAt: input.now, enqueuedAt: input.now, availableAt,
      claimedAt: null, startedAt: null, finishedAt: null, leaseExpiresAt: null, leaseMode: null, tokenHash: null,
      finalDataclipId: null, finalState: null, webhookResponse: null, versions: null,
    };
  });
}

export function getRun(db: SqliteConnection, id: string): RunRecord | undefined {
  const row = db.get('SELECT * FROM runs WHERE id = ?', id);
  return row ? toRun(row) : undefined;
}

export function getRunByIdempotencyKey(db: SqliteConnection, key: string): RunRecord | undefined {
  const row = db.get('SELECT * FROM runs WHERE idempotency_key = ?', key);
  return row ? toRun(row) : undefined;
}

export function listRuns(db: SqliteConnection, filter: RunFilter): RunRecord[] {
  const where: string[] = [];
  const params: SQLInputValue[] = [];
  if (filter.queue !== undefined) {
    where.push('queue = ?');
    params.push(filter.queue);
  }
  if (filter.state !== undefined) {
    where.push('state = ?');
    params.push(filter.state);
  }
  if (filter.deadLetter !== undefined) {
    where.push('dead_letter = ?');
    params.push(filter.deadLetter ? 1 : 0);
  }
  if (filter.beforeSeq !== undefined) {
    where.push('seq < ?');
    params.push(filter.beforeSeq);
  }
  const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
  return db.all(`SELECT * FROM runs ${clause} ORDER BY seq DESC LIMIT ?`, ...params, filter.limit).map(toRun);
}

/** Keeps the first `webhook_response` a run produced; later ones are ignored. */
export function setWebhookResponseOnce(db: SqliteConnection, runId: string, response: WebhookResponse): void {
  db.run('UPDATE runs SET webhook_response = ? WHERE id = ? AND webhook_response IS NULL', JSON.stringify(response), runId);
}

export function retryDeadLetter(db: SqliteConnection, runId: string, now: number): boolean {
  return db.run(
    `UPDATE runs SET state = 'available', dead_letter = 0, max_attempts = attempts + 1, worker_id = NULL, worker_name = NULL,
       claimed_at = NULL, started_at = NULL, finished_at = NULL, lease_expires_at = NULL, lease_mode = NULL, token_hash = NULL,
       enqueued_at = ?, available_at = ?
     WHERE id = ? AND dead_letter = 1`,
    now, now, runId,
  ) > 0;
}

/**
 * Retention: one batch of runs finished before `cutoff`, with everything
 * that hangs off them, in one short transaction (claims wait at most one
 * batch).
 */
export function deleteFinishedBefore(db: SqliteConnection, cutoff: number, batch: number): number {
  return db.transaction(() => {
    const ids = db.all(
      `SELECT id FROM runs INDEXED BY runs_finished WHERE finished_at < ? AND state NOT IN ('available', 'claimed', 'started') ORDER BY finished_at LIMIT ?`,
      cutoff, batch,
    ).map((row) => str(row, 'id'));
    if (ids.length === 0) return 0;
    const list = ids.map(() => '?').join(', ');
    for (const table of ['log_lines', 'steps', 'event_replies', 'run_attempts', 'dataclips']) {
      db.run(`DELETE FROM ${table} WHERE run_id IN (${list})`, ...ids);
    }
    db.run(`DELETE FROM runs WHERE id IN (${list})`, ...ids);
    return ids.length;
  });
}
