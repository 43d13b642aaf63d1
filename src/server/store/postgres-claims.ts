/**
 * Claims and leases on PostgreSQL: a lane's claim (rows locked with
 * `FOR UPDATE SKIP LOCKED`, so replicas claiming at once never take one run
 * twice nor wait on each other), the attempt's token, `claimed → started`,
 * lease extension and renewal, finishing or requeueing an attempt, and the
 * leases that lapsed.
 */
import { WILDCARD } from '../../protocol/index.ts';
import { RUN_MEMORY_PATH, fitMemory } from './claim-memory.ts';
import type { PostgresConnection } from './postgres-connection.ts';
import { num, str, toRun } from './store-rows.ts';
import type { Row } from './store-rows.ts';
import type { ClaimMemoryFilter, ClaimRequest, ClaimedRow, LeaseMode, RunOutcomeFields, RunRecord } from './store.ts';

export function claim(db: PostgresConnection, request: ClaimRequest): Promise<ClaimedRow[]> {
  const named = [...new Set(request.chain.filter((q) => q !== WILDCARD))];
  const wildcard = request.chain.includes(WILDCARD);
  if (named.length === 0 && !wildcard) return Promise.resolve([]);
  if (request.memory !== undefined) return claimWithMemory(db, request, request.memory, named, wildcard);
  return db.transaction(async (tx) => {
    const heartbeat = request.heartbeatLeaseMs;
    // Same order as SQLite: chain position, then priority (higher first), enqueue time, insertion.
    // Rows another replica is claiming right now are locked: SKIP LOCKED passes over them.
    const take = async (filter: string, params: unknown[], limit: number): Promise<Row[]> => {
      const base = params.length;
      const rows = await tx.all(
        `WITH picked AS (
           SELECT id FROM runs WHERE state = 'available' AND available_at <= $${base + 1} AND ${filter}
             AND NOT EXISTS (SELECT 1 FROM queues WHERE queues.name = runs.queue AND queues.suspended = 1)
           ORDER BY priority DESC, enqueued_at, seq LIMIT $${base + 2} FOR UPDATE SKIP LOCKED
         )
         UPDATE runs SET state = 'claimed', attempts = runs.attempts + 1, worker_id = $${base + 3}, worker_name = $${base + 4},
           claimed_at = $${base + 1}, token_hash = NULL,
           lease_expires_at = CASE WHEN $${base + 5}::bigint IS NULL THEN $${base + 1} + runs.run_timeout_ms + $${base + 6} ELSE $${base + 1} + $${base + 5}::bigint END,
           lease_mode = CASE WHEN $${base + 5}::bigint IS NULL THEN 'timeout' ELSE 'heartbeat' END
         FROM picked WHERE runs.id = picked.id
         RETURNING runs.id, runs.queue, runs.attempts, runs.run_timeout_ms, runs.enqueued_at, runs.priority, runs.seq`,
        [...params, request.now, limit, request.workerId, request.workerName, heartbeat, request.graceMs],
      );
      // UPDATE … RETURNING does not keep the CTE's order.
      return rows.sort((a, b) => num(b, 'priority') - num(a, 'priority') || num(a, 'enqueued_at') - num(b, 'enqueued_at') || num(a, 'seq') - num(b, 'seq'));
    };
    const rows: Row[] = [];
    for (const queue of named) {
      if (rows.length >= request.demand) break;
      rows.push(...(await take('queue = $1', [queue], request.demand - rows.length)));
    }
    if (wildcard && rows.length < request.demand) {
      rows.push(...(await take('queue <> ALL($1::text[])', [named], request.demand - rows.length)));
    }
    const claimed: ClaimedRow[] = rows.map((row) => ({
      id: str(row, 'id'),
      queue: str(row, 'queue'),
      attempt: num(row, 'attempts'),
      runTimeoutMs: num(row, 'run_timeout_ms'),
      enqueuedAt: num(row, 'enqueued_at'),
    }));
    if (claimed.length > 0) {
      await tx.run(
        `INSERT INTO run_attempts (run_id, attempt, worker_id, worker_name, claimed_at, state, lane)
         SELECT id, attempt, $3, $4, $5, 'claimed', $6 FROM unnest($1::text[], $2::int[]) AS t(id, attempt)`,
        [claimed.map((c) => c.id), claimed.map((c) => c.attempt), request.workerId, request.workerName, request.now, request.chain.join('>')],
      );
    }
    return claimed;
  });
}

/**
 * A memory claim (`claim-memory.ts`): the candidates are locked and read
 * with their need in claim order first, the fairness rule picks among them,
 * and only the picked rows are marked claimed, in the same transaction.
 */
function claimWithMemory(db: PostgresConnection, request: ClaimRequest, memory: ClaimMemoryFilter, named: readonly string[], wildcard: boolean): Promise<ClaimedRow[]> {
  return db.transaction(async (tx) => {
    const need = `COALESCE((plan::jsonb #>> '{${RUN_MEMORY_PATH.replace('.', ',')}}')::numeric, $3)`;
    const candidates = async (filter: string, param: unknown, limit: number): Promise<Row[]> =>
      tx.all(
        `SELECT id, ${need} AS memory_mb FROM runs WHERE state = 'available' AND available_at <= $1 AND ${filter}
           AND NOT EXISTS (SELECT 1 FROM queues WHERE queues.name = runs.queue AND queues.suspended = 1)
           AND ${need} <= $4
         ORDER BY priority DESC, enqueued_at, seq LIMIT $5 FOR UPDATE SKIP LOCKED`,
        [request.now, param, memory.defaultRunMb, memory.laneMb, limit],
      );
    let rows: Row[] = [];
    for (const queue of named) {
      if (rows.length >= request.demand) break;
      rows.push(...(await candidates('queue = $2', queue, request.demand - rows.length)));
    }
    if (wildcard && rows.length < request.demand) rows.push(...(await candidates('queue <> ALL($2::text[])', named, request.demand - rows.length)));
    rows = fitMemory(rows, memory.freeMb);
    if (rows.length === 0) return [];
    const needs = new Map(rows.map((row) => [str(row, 'id'), Math.ceil(num(row, 'memory_mb'))]));
    const heartbeat = request.heartbeatLeaseMs;
    const updated = await tx.all(
      `UPDATE runs SET state = 'claimed', attempts = runs.attempts + 1, worker_id = $2, worker_name = $3, claimed_at = $4, token_hash = NULL,
         lease_expires_at = CASE WHEN $5::bigint IS NULL THEN $4 + runs.run_timeout_ms + $6 ELSE $4 + $5::bigint END,
         lease_mode = CASE WHEN $5::bigint IS NULL THEN 'timeout' ELSE 'heartbeat' END
       WHERE id = ANY($1::text[]) RETURNING id, queue, attempts, run_timeout_ms, enqueued_at`,
      [[...needs.keys()], request.workerId, request.workerName, request.now, heartbeat, request.graceMs],
    );
    const byId = new Map(updated.map((row) => [str(row, 'id'), row]));
    // In the fairness walk's order (UPDATE … RETURNING does not keep it).
    const claimed: ClaimedRow[] = [...needs].flatMap(([id, memoryMb]) => {
      const row = byId.get(id);
      return row === undefined ? [] : [{ id, queue: str(row, 'queue'), attempt: num(row, 'attempts'), runTimeoutMs: num(row, 'run_timeout_ms'), enqueuedAt: num(row, 'enqueued_at'), memoryMb }];
    });
    await tx.run(
      `INSERT INTO run_attempts (run_id, attempt, worker_id, worker_name, claimed_at, state, lane, memory_mb)
       SELECT id, attempt, $3, $4, $5, 'claimed', $6, memory_mb FROM unnest($1::text[], $2::int[], $7::int[]) AS t(id, attempt, memory_mb)`,
      [claimed.map((c) => c.id), claimed.map((c) => c.attempt), request.workerId, request.workerName, request.now, request.chain.join('>'), claimed.map((c) => c.memoryMb ?? null)],
    );
    return claimed;
  });
}

export async function setTokenHash(db: PostgresConnection, runId: string, attempt: number, tokenHash: string): Promise<void> {
  await db.run(`UPDATE runs SET token_hash = $1 WHERE id = $2 AND attempts = $3 AND state = 'claimed'`, [tokenHash, runId, attempt]);
}

export function markStarted(db: PostgresConnection, runId: string, attempt: number, now: number, versions: Record<string, string> | null): Promise<boolean> {
  return db.transaction(async (tx) => {
    const changed = await tx.run(
      `UPDATE runs SET state = 'started', started_at = $1, versions = $2 WHERE id = $3 AND attempts = $4 AND state = 'claimed'`,
      [now, versions === null ? null : JSON.stringify(versions), runId, attempt],
    );
    if (changed > 0) await tx.run(`UPDATE run_attempts SET state = 'started', started_at = $1 WHERE run_id = $2 AND attempt = $3`, [now, runId, attempt]);
    return changed > 0;
  });
}

export async function extendLease(db: PostgresConnection, runId: string, attempt: number, leaseExpiresAt: number, mode: LeaseMode | null): Promise<void> {
  if (mode === null) {
    await db.run(
      `UPDATE runs SET lease_expires_at = $1 WHERE id = $2 AND attempts = $3 AND state IN ('claimed', 'started') AND lease_mode = 'heartbeat'`,
      [leaseExpiresAt, runId, attempt],
    );
  } else {
    await db.run(
      `UPDATE runs SET lease_expires_at = $1, lease_mode = $2 WHERE id = $3 AND attempts = $4 AND state IN ('claimed', 'started')`,
      [leaseExpiresAt, mode, runId, attempt],
    );
  }
}

export function finishRun(db: PostgresConnection, runId: string, attempt: number, fields: RunOutcomeFields, deadLetter: boolean): Promise<boolean> {
  return db.transaction(async (tx) => {
    const changed = await tx.run(
      `UPDATE runs SET state = $1, reason = $2, error_type = $3, error_message = $4, finished_at = $5, lease_expires_at = NULL,
         final_dataclip_id = COALESCE($6, final_dataclip_id), final_state = COALESCE($7, final_state), dead_letter = $8
       WHERE id = $9 AND attempts = $10 AND state IN ('available', 'claimed', 'started')`,
      [fields.state, fields.reason, fields.errorType, fields.errorMessage, fields.now, fields.finalDataclipId ?? null,
        fields.finalState === undefined ? null : JSON.stringify(fields.finalState), deadLetter ? 1 : 0, runId, attempt],
    );
    if (changed > 0) await finishAttempt(tx, runId, attempt, fields);
    return changed > 0;
  });
}

export function requeue(db: PostgresConnection, runId: string, attempt: number, fields: RunOutcomeFields, availableAt: number): Promise<boolean> {
  return db.transaction(async (tx) => {
    const changed = await tx.run(
      `UPDATE runs SET state = 'available', reason = $1, error_type = $2, error_message = $3, worker_id = NULL, worker_name = NULL,
         claimed_at = NULL, started_at = NULL, finished_at = NULL, lease_expires_at = NULL, lease_mode = NULL, token_hash = NULL,
         enqueued_at = $4, available_at = $5
       WHERE id = $6 AND attempts = $7 AND state IN ('claimed', 'started')`,
      [fields.reason, fields.errorType, fields.errorMessage, fields.now, availableAt, runId, attempt],
    );
    if (changed > 0) await finishAttempt(tx, runId, attempt, fields);
    return changed > 0;
  });
}

async function finishAttempt(db: PostgresConnection, runId: string, attempt: number, fields: RunOutcomeFields): Promise<void> {
  await db.run(
    `UPDATE run_attempts SET state = $1, finished_at = $2, error_type = $3, error_message = $4 WHERE run_id = $5 AND attempt = $6`,
    [fields.state, fields.now, fields.errorType, fields.errorMessage, runId, attempt],
  );
}

export function renewHeartbeatLeases(db: PostgresConnection, leaseExpiresAt: number): Promise<number> {
  return db.run(
    `UPDATE runs SET lease_expires_at = $1 WHERE state IN ('claimed', 'started') AND lease_mode = 'heartbeat' AND lease_expires_at < $1`,
    [leaseExpiresAt],
  );
}

export async function expiredLeases(db: PostgresConnection, now: number): Promise<RunRecord[]> {
  return (await db.all(`SELECT * FROM runs WHERE state IN ('claimed', 'started') AND lease_expires_at <= $1`, [now])).map(toRun);
}
