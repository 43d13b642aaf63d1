/**
 * Claims and leases on SQLite: a lane's atomic claim, the attempt's token,
 * `claimed → started`, lease extension and renewal, finishing or requeueing
 * an attempt, and the leases that lapsed.
 */
import type { SQLInputValue } from 'node:sqlite';
import { WILDCARD } from '../../protocol/index.ts';
import { RUN_MEMORY_PATH, fitMemory } from './claim-memory.ts';
import type { SqliteConnection } from './sqlite-connection.ts';
import { isQueueSuspended } from './sqlite-queues.ts';
import { num, str, toRun } from './store-rows.ts';
import type { Row } from './store-rows.ts';
import type { ClaimRequest, ClaimedRow, LeaseMode, RunOutcomeFields, RunRecord } from './store.ts';

/**
 * Claims up to `demand` runs for one lane, atomically. Named queues come
 * first in chain order, then (with `*`) every other queue; within that,
 * higher priority first, then oldest enqueue. Suspended queues and runs
 * waiting out a retry backoff are skipped.
 */
export function claim(db: SqliteConnection, request: ClaimRequest): ClaimedRow[] {
  const named = request.chain.filter((q) => q !== WILDCARD);
  const wildcard = request.chain.includes(WILDCARD);
  if (named.length === 0 && !wildcard) return [];
  return db.transaction(() => {
    // One indexed, LIMITed query per named queue in chain order, then one for
    // every other queue: each walks an index in claim order and stops at the
    // demand, instead of sorting every waiting run (the cost no longer grows
    // with the queue depth). Same order as before: chain position, then
    // priority (higher first), then enqueue time, then insertion.
    let rows: Row[] = [];
    const memory = request.memory;
    // A run's memory need is its plan's run_memory_limit_mb (else the lane's default). Runs that could
    // never fit this lane are left for other lanes; the rest keep their order (see fitMemory).
    const needSql = `COALESCE(json_extract(plan, '$.${RUN_MEMORY_PATH}'), ?)`;
    const columns = memory === undefined
      ? 'SELECT id, queue, attempts, run_timeout_ms, enqueued_at FROM runs'
      : `SELECT id, queue, attempts, run_timeout_ms, enqueued_at, ${needSql} AS memory_mb FROM runs`;
    const memoryClause = memory === undefined ? '' : `AND ${needSql} <= ?`;
    const memoryParams: SQLInputValue[] = memory === undefined ? [] : [memory.defaultRunMb];
    const fitParams: SQLInputValue[] = memory === undefined ? [] : [memory.defaultRunMb, memory.laneMb];
    const order = 'ORDER BY priority DESC, enqueued_at ASC, seq ASC LIMIT ?';
    const seen = new Set<string>();
    // A run just stored that is the only one available is first in any order: one query instead of the walk.
    const sole = request.justStored === undefined ? undefined : db.get(
      `${columns} WHERE id = ? AND state = 'available' AND available_at <= ?
         AND NOT EXISTS (SELECT 1 FROM runs AS other INDEXED BY runs_available_any WHERE other.state = 'available' AND other.available_at <= ? AND other.id <> ?)
         AND queue NOT IN (SELECT name FROM queues WHERE suspended = 1) ${memoryClause}`,
      ...memoryParams, request.justStored, request.now, request.now, request.justStored, ...fitParams,
    );
    const soleTaken = sole !== undefined && (wildcard || named.includes(str(sole, 'queue')));
    if (soleTaken) rows.push(sole);
    for (const queue of soleTaken ? [] : named) {
      if (rows.length >= request.demand) break;
      if (seen.has(queue)) continue;
      seen.add(queue);
      if (isQueueSuspended(db, queue)) continue;
      rows.push(
        ...db.all(
          `${columns} WHERE state = 'available' AND queue = ? AND available_at <= ? ${memoryClause} ${order}`,
          ...memoryParams, queue, request.now, ...fitParams, request.demand - rows.length,
        ),
      );
    }
    if (wildcard && rows.length < request.demand && !soleTaken) {
      const excluded = [...seen];
      rows.push(
        ...db.all(
          `${columns} INDEXED BY runs_available_any WHERE state = 'available' AND available_at <= ?
             ${excluded.length > 0 ? `AND queue NOT IN (${excluded.map(() => '?').join(', ')})` : ''}
             AND queue NOT IN (SELECT name FROM queues WHERE suspended = 1) ${memoryClause}
           ${order}`,
          ...memoryParams, request.now, ...excluded, ...fitParams, request.demand - rows.length,
        ),
      );
    }
    if (memory !== undefined) rows = fitMemory(rows, memory.freeMb);
    const claimed: ClaimedRow[] = [];
    for (const row of rows) {
      const attempt = num(row, 'attempts') + 1;
      const runTimeoutMs = num(row, 'run_timeout_ms');
      const id = str(row, 'id');
      const heartbeat = request.heartbeatLeaseMs !== null;
      db.run(
        `UPDATE runs SET state = 'claimed', attempts = ?, worker_id = ?, worker_name = ?, claimed_at = ?,
           lease_expires_at = ?, lease_mode = ?, token_hash = NULL WHERE id = ? AND state = 'available'`,
        attempt, request.workerId, request.workerName, request.now,
        heartbeat ? request.now + (request.heartbeatLeaseMs ?? 0) : request.now + runTimeoutMs + request.graceMs,
        heartbeat ? 'heartbeat' : 'timeout', id,
      );
      const memoryMb = memory === undefined ? null : Math.ceil(num(row, 'memory_mb'));
      db.run(
        `INSERT INTO run_attempts (run_id, attempt, worker_id, worker_name, claimed_at, state, lane, memory_mb) VALUES (?, ?, ?, ?, ?, 'claimed', ?, ?)`,
        id, attempt, request.workerId, request.workerName, request.now, request.chain.join('>'), memoryMb,
      );
      const claimedRow: ClaimedRow = { id, queue: str(row, 'queue'), attempt, runTimeoutMs, enqueuedAt: num(row, 'enqueued_at') };
      if (memoryMb !== null) claimedRow.memoryMb = memoryMb;
      claimed.push(claimedRow);
    }
    return claimed;
  });
}

/** Binds the signed token to the attempt, so only its holder can join the run channel. */
export function setTokenHash(db: SqliteConnection, runId: string, attempt: number, tokenHash: string): void {
  db.run(`UPDATE runs SET token_hash = ? WHERE id = ? AND attempts = ? AND state = 'claimed'`, tokenHash, runId, attempt);
}

/** `claimed → started`. Returns false when the run was not claimed by this attempt. */
export function markStarted(db: SqliteConnection, runId: string, attempt: number, now: number, versions: Record<string, string> | null): boolean {
  return db.transaction(() => {
    const changed = db.run(
      `UPDATE runs SET state = 'started', started_at = ?, versions = ? WHERE id = ? AND attempts = ? AND state = 'claimed'`,
      now, versions === null ? null : JSON.stringify(versions), runId, attempt,
    );
    if (changed > 0) db.run(`UPDATE run_attempts SET state = 'started', started_at = ? WHERE run_id = ? AND attempt = ?`, now, runId, attempt);
    return changed > 0;
  });
}

/** Extends the lease of an in-flight attempt; the first heartbeat switches it to heartbeat leasing. */
export function extendLease(db: SqliteConnection, runId: string, attempt: number, leaseExpiresAt: number, mode: LeaseMode | null): void {
  if (mode === null) {
    db.run(
      `UPDATE runs SET lease_expires_at = ? WHERE id = ? AND attempts = ? AND state IN ('claimed', 'started') AND lease_mode = 'heartbeat'`,
      leaseExpiresAt, runId, attempt,
    );
  } else {
    db.run(
      `UPDATE runs SET lease_expires_at = ?, lease_mode = ? WHERE id = ? AND attempts = ? AND state IN ('claimed', 'started')`,
      leaseExpiresAt, mode, runId, attempt,
    );
  }
}

/**
 * Writes a terminal state for the current attempt, only if the attempt is
 * still in flight (or the run still available, for cancels). Returns false
 * when someone else finished it first.
 */
export function finishRun(db: SqliteConnection, runId: string, attempt: number, fields: RunOutcomeFields, deadLetter: boolean): boolean {
  return db.transaction(() => {
    const changed = db.run(
      `UPDATE runs SET state = ?, reason = ?, error_type = ?, error_message = ?, finished_at = ?, lease_expires_at = NULL,
         final_dataclip_id = COALESCE(?, final_dataclip_id), final_state = COALESCE(?, final_state), dead_letter = ?
       WHERE id = ? AND attempts = ? AND state IN ('available', 'claimed', 'started')`,
      fields.state, fields.reason, fields.errorType, fields.errorMessage, fields.now,
      fields.finalDataclipId ?? null, fields.finalState === undefined ? null : JSON.stringify(fields.finalState), deadLetter ? 1 : 0,
      runId, attempt,
    );
    if (changed > 0) finishAttempt(db, runId, attempt, fields);
    return changed > 0;
  });
}

/** Puts an in-flight attempt that ended badly back in its queue, available again at `availableAt`. */
export function requeue(db: SqliteConnection, runId: string, attempt: number, fields: RunOutcomeFields, availableAt: number): boolean {
  return db.transaction(() => {
    const changed = db.run(
      `UPDATE runs SET state = 'available', reason = ?, error_type = ?, error_message = ?, worker_id = NULL, worker_name = NULL,
         claimed_at = NULL, started_at = NULL, finished_at = NULL, lease_expires_at = NULL, lease_mode = NULL, token_hash = NULL,
         enqueued_at = ?, available_at = ?
       WHERE id = ? AND attempts = ? AND state IN ('claimed', 'started')`,
      fields.reason, fields.errorType, fields.errorMessage, fields.now, availableAt, runId, attempt,
    );
    if (changed > 0) finishAttempt(db, runId, attempt, fields);
    return changed > 0;
  });
}

function finishAttempt(db: SqliteConnection, runId: string, attempt: number, fields: RunOutcomeFields): void {
  db.run(
    `UPDATE run_attempts SET state = ?, finished_at = ?, error_type = ?, error_message = ? WHERE run_id = ? AND attempt = ?`,
    fields.state, fields.now, fields.errorType, fields.errorMessage, runId, attempt,
  );
}

/**
 * After a restart: no worker could beat while the server was down, so every
 * heartbeat lease runs at least until `leaseExpiresAt`. Returns how many moved.
 */
export function renewHeartbeatLeases(db: SqliteConnection, leaseExpiresAt: number): number {
  return db.run(
    `UPDATE runs SET lease_expires_at = ? WHERE state IN ('claimed', 'started') AND lease_mode = 'heartbeat' AND lease_expires_at < ?`,
    leaseExpiresAt, leaseExpiresAt,
  );
}

/** In-flight runs whose lease lapsed at `now`. */
export function expiredLeases(db: SqliteConnection, now: number): RunRecord[] {
  return db.all(`SELECT * FROM runs WHERE state IN ('claimed', 'started') AND lease_expires_at <= ?`, now).map(toRun);
}
