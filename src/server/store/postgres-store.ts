/**
 * The PostgreSQL store: the same `Store` as SQLite, for several `lanes
 * server` replicas on one database. Claims lock the rows they take with
 * `FOR UPDATE SKIP LOCKED`, so two replicas claiming at once never hand out
 * one run and never wait on each other's rows; every other write is guarded
 * by its WHERE clause (`state IN (…)`, `attempts = $n`), which PostgreSQL
 * re-checks after a concurrent update, so a late or repeated write changes
 * nothing.
 *
 * A store made by `open` uses the pool; the handle given to `transaction`'s
 * callback runs every call on the transaction's one client.
 *
 * States: open → closed.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Pool, PoolClient, QueryResultRow } from 'pg';
import type { RunPlan, RunState, WebhookResponse } from '../../protocol/index.ts';
import { WILDCARD } from '../../protocol/index.ts';
import { ServerError } from '../server-error.ts';
import { RUN_MEMORY_PATH, fitMemory } from './claim-memory.ts';
import { migratePostgres } from './postgres-migrations.ts';
import { assembleQueueStats, byClaim, laneAttemptColumns, num, optStr, str, toAttempt, toLaneAttempt, toLog, toRun, toStep } from './store-rows.ts';
import type { Row } from './store-rows.ts';
import type {
  AttemptRecord, ClaimMemoryFilter, ClaimRequest, ClaimedRow, DataclipRecord, LaneAttempt, LeaseMode, LogRecord, NewLogLine, NewRun, NewStep,
  QueueStats, RunFilter, RunOutcomeFields, RunRecord, StepOutcome, StepRecord, Store, WorkerRecord,
} from './store.ts';
import { describeDatabaseUrl } from './store-url.ts';
import { PostgresListener } from './postgres-listener.ts';

/** Connections per replica: claims, channel events and API reads share them. */
const POOL_SIZE = 10;

interface Shared {
  pool: Pool;
  url: string;
  closed: boolean;
}

/** The NOTIFY channel every Lanes server on a database listens on. */
const NOTIFY_CHANNEL = 'lanes_events';

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly #shared: Shared;
  /** The transaction's client, for the handle given to `transaction`'s callback. */
  readonly #client: PoolClient | undefined;

  private constructor(shared: Shared, client: PoolClient | undefined) {
    this.#shared = shared;
    this.#client = client;
  }

  /** Connects, applies pending migrations (safe with several replicas starting at once). */
  static async open(url: string): Promise<PostgresStore> {
    const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE, connectionTimeoutMillis: 10_000 });
    // An idle client that loses its connection (the server restarted) must not crash the process.
    pool.on('error', () => undefined);
    try {
      const client = await pool.connect();
      try {
        await migratePostgres(client);
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw new ServerError('STORE_OPEN', `cannot open database ${describeDatabaseUrl(url)}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    return new PostgresStore({ pool, url, closed: false }, undefined);
  }

  /** The pool, for what needs its own connection (LISTEN). */
  get pool(): Pool {
    return this.#shared.pool;
  }

  get isOpen(): boolean {
    return !this.#shared.closed;
  }

  async close(): Promise<void> {
    if (this.#shared.closed) return;
    this.#shared.closed = true;
    await this.#shared.pool.end();
  }

  async #query<R extends QueryResultRow = Row>(sql: string, params: unknown[] = []): Promise<{ rows: R[]; rowCount: number }> {
    if (this.#shared.closed) throw new ServerError('STORE_CLOSED', 'the store is closed');
    const result = await (this.#client ?? this.#shared.pool).query<R>(sql, params);
    return { rows: result.rows, rowCount: result.rowCount ?? 0 };
  }

  async #all(sql: string, params: unknown[] = []): Promise<Row[]> {
    return (await this.#query(sql, params)).rows;
  }

  async #get(sql: string, params: unknown[] = []): Promise<Row | undefined> {
    return (await this.#query(sql, params)).rows[0];
  }

  async #run(sql: string, params: unknown[] = []): Promise<number> {
    return (await this.#query(sql, params)).rowCount;
  }

  async transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    if (this.#client !== undefined) return fn(this);
    if (this.#shared.closed) throw new ServerError('STORE_CLOSED', 'the store is closed');
    const client = await this.#shared.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await fn(new PostgresStore(this.#shared, client));
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }

  async ping(): Promise<boolean> {
    if (this.#shared.closed) return false;
    try {
      return num((await this.#get('SELECT 1 AS ok')) ?? { ok: 0 }, 'ok') === 1;
    } catch {
      return false;
    }
  }

  // ---- runs ----

  insertRun(input: NewRun): Promise<RunRecord> {
    return this.transaction(async (tx) => {
      const self = tx as PostgresStore;
      const dataclipId = randomUUID();
      await self.#run('INSERT INTO dataclips (id, run_id, type, body, created_at) VALUES ($1, $2, $3, $4, $5)', [dataclipId, input.id, 'input', input.inputJson, input.now]);
      const plan: RunPlan = { ...input.plan, id: input.id, dataclip_id: dataclipId };
      const row = await self.#get(
        `INSERT INTO runs (id, queue, priority, state, max_attempts, idempotency_key, plan, dataclip_id, run_timeout_ms, created_at, enqueued_at, available_at)
         VALUES ($1, $2, $3, 'available', $4, $5, $6, $7, $8, $9, $9, $10) RETURNING *`,
        [input.id, input.queue, input.priority, input.maxAttempts, input.idempotencyKey, JSON.stringify(plan), dataclipId, input.runTimeoutMs, input.now, input.notBefore ?? input.now],
      );
      if (!row) throw new ServerError('STORE_CONFLICT', 'inserted run vanished');
      return toRun(row);
    });
  }

  async getRun(id: string): Promise<RunRecord | undefined> {
    const row = await this.#get('SELECT * FROM runs WHERE id = $1', [id]);
    return row ? toRun(row) : undefined;
  }

  async getRunByIdempotencyKey(key: string): Promise<RunRecord | undefined> {
    const row = await this.#get('SELECT * FROM runs WHERE idempotency_key = $1', [key]);
    return row ? toRun(row) : undefined;
  }

  async listRuns(filter: RunFilter): Promise<RunRecord[]> {
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
    return (await this.#all(`SELECT * FROM runs ${clause} ORDER BY seq DESC LIMIT $${params.length}`, params)).map(toRun);
  }

  claim(request: ClaimRequest): Promise<ClaimedRow[]> {
    const named = [...new Set(request.chain.filter((q) => q !== WILDCARD))];
    const wildcard = request.chain.includes(WILDCARD);
    if (named.length === 0 && !wildcard) return Promise.resolve([]);
    if (request.memory !== undefined) return this.#claimWithMemory(request, request.memory, named, wildcard);
    return this.transaction(async (tx) => {
      const self = tx as PostgresStore;
      const heartbeat = request.heartbeatLeaseMs;
      // Same order as SQLite: chain position, then priority (higher first), enqueue time, insertion.
      // Rows another replica is claiming right now are locked: SKIP LOCKED passes over them.
      const take = async (filter: string, params: unknown[], limit: number): Promise<Row[]> => {
        const base = params.length;
        const rows = await self.#all(
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
        await self.#run(
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
  #claimWithMemory(request: ClaimRequest, memory: ClaimMemoryFilter, named: readonly string[], wildcard: boolean): Promise<ClaimedRow[]> {
    return this.transaction(async (tx) => {
      const self = tx as PostgresStore;
      const need = `COALESCE((plan::jsonb #>> '{${RUN_MEMORY_PATH.replace('.', ',')}}')::numeric, $3)`;
      const candidates = async (filter: string, param: unknown, limit: number): Promise<Row[]> =>
        self.#all(
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
      const updated = await self.#all(
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
      await self.#run(
        `INSERT INTO run_attempts (run_id, attempt, worker_id, worker_name, claimed_at, state, lane, memory_mb)
         SELECT id, attempt, $3, $4, $5, 'claimed', $6, memory_mb FROM unnest($1::text[], $2::int[], $7::int[]) AS t(id, attempt, memory_mb)`,
        [claimed.map((c) => c.id), claimed.map((c) => c.attempt), request.workerId, request.workerName, request.now, request.chain.join('>'), claimed.map((c) => c.memoryMb ?? null)],
      );
      return claimed;
    });
  }

  async setTokenHash(runId: string, attempt: number, tokenHash: string): Promise<void> {
    await this.#run(`UPDATE runs SET token_hash = $1 WHERE id = $2 AND attempts = $3 AND state = 'claimed'`, [tokenHash, runId, attempt]);
  }

  markStarted(runId: string, attempt: number, now: number, versions: Record<string, string> | null): Promise<boolean> {
    return this.transaction(async (tx) => {
      const self = tx as PostgresStore;
      const changed = await self.#run(
        `UPDATE runs SET state = 'started', started_at = $1, versions = $2 WHERE id = $3 AND attempts = $4 AND state = 'claimed'`,
        [now, versions === null ? null : JSON.stringify(versions), runId, attempt],
      );
      if (changed > 0) await self.#run(`UPDATE run_attempts SET state = 'started', started_at = $1 WHERE run_id = $2 AND attempt = $3`, [now, runId, attempt]);
      return changed > 0;
    });
  }

  async extendLease(runId: string, attempt: number, leaseExpiresAt: number, mode: LeaseMode | null): Promise<void> {
    if (mode === null) {
      await this.#run(
        `UPDATE runs SET lease_expires_at = $1 WHERE id = $2 AND attempts = $3 AND state IN ('claimed', 'started') AND lease_mode = 'heartbeat'`,
        [leaseExpiresAt, runId, attempt],
      );
    } else {
      await this.#run(
        `UPDATE runs SET lease_expires_at = $1, lease_mode = $2 WHERE id = $3 AND attempts = $4 AND state IN ('claimed', 'started')`,
        [leaseExpiresAt, mode, runId, attempt],
      );
    }
  }

  finishRun(runId: string, attempt: number, fields: RunOutcomeFields, deadLetter: boolean): Promise<boolean> {
    return this.transaction(async (tx) => {
      const self = tx as PostgresStore;
      const changed = await self.#run(
        `UPDATE runs SET state = $1, reason = $2, error_type = $3, error_message = $4, finished_at = $5, lease_expires_at = NULL,
           final_dataclip_id = COALESCE($6, final_dataclip_id), final_state = COALESCE($7, final_state), dead_letter = $8
         WHERE id = $9 AND attempts = $10 AND state IN ('available', 'claimed', 'started')`,
        [fields.state, fields.reason, fields.errorType, fields.errorMessage, fields.now, fields.finalDataclipId ?? null,
          fields.finalState === undefined ? null : JSON.stringify(fields.finalState), deadLetter ? 1 : 0, runId, attempt],
      );
      if (changed > 0) await self.#finishAttempt(runId, attempt, fields);
      return changed > 0;
    });
  }

  requeue(runId: string, attempt: number, fields: RunOutcomeFields, availableAt: number): Promise<boolean> {
    return this.transaction(async (tx) => {
      const self = tx as PostgresStore;
      const changed = await self.#run(
        `UPDATE runs SET state = 'available', reason = $1, error_type = $2, error_message = $3, worker_id = NULL, worker_name = NULL,
           claimed_at = NULL, started_at = NULL, finished_at = NULL, lease_expires_at = NULL, lease_mode = NULL, token_hash = NULL,
           enqueued_at = $4, available_at = $5
         WHERE id = $6 AND attempts = $7 AND state IN ('claimed', 'started')`,
        [fields.reason, fields.errorType, fields.errorMessage, fields.now, availableAt, runId, attempt],
      );
      if (changed > 0) await self.#finishAttempt(runId, attempt, fields);
      return changed > 0;
    });
  }

  async #finishAttempt(runId: string, attempt: number, fields: RunOutcomeFields): Promise<void> {
    await this.#run(
      `UPDATE run_attempts SET state = $1, finished_at = $2, error_type = $3, error_message = $4 WHERE run_id = $5 AND attempt = $6`,
      [fields.state, fields.now, fields.errorType, fields.errorMessage, runId, attempt],
    );
  }

  renewHeartbeatLeases(leaseExpiresAt: number): Promise<number> {
    return this.#run(
      `UPDATE runs SET lease_expires_at = $1 WHERE state IN ('claimed', 'started') AND lease_mode = 'heartbeat' AND lease_expires_at < $1`,
      [leaseExpiresAt],
    );
  }

  async expiredLeases(now: number): Promise<RunRecord[]> {
    return (await this.#all(`SELECT * FROM runs WHERE state IN ('claimed', 'started') AND lease_expires_at <= $1`, [now])).map(toRun);
  }

  async getAttempts(runId: string): Promise<AttemptRecord[]> {
    return (await this.#all('SELECT * FROM run_attempts WHERE run_id = $1 ORDER BY attempt', [runId])).map(toAttempt);
  }

  async activeRunsByWorker(): Promise<Map<string, string[]>> {
    const result = new Map<string, string[]>();
    for (const row of await this.#all(`SELECT id, worker_id FROM runs WHERE state IN ('claimed', 'started') AND worker_id IS NOT NULL ORDER BY seq`)) {
      const workerId = str(row, 'worker_id');
      const list = result.get(workerId) ?? [];
      list.push(str(row, 'id'));
      result.set(workerId, list);
    }
    return result;
  }

  async countsByQueueAndState(): Promise<Array<{ queue: string; state: RunState; count: number }>> {
    return (await this.#all('SELECT queue, state, COUNT(*) AS n FROM runs GROUP BY queue, state')).map((row) => ({
      queue: str(row, 'queue'),
      state: str(row, 'state') as RunState,
      count: num(row, 'n'),
    }));
  }

  async queueStats(): Promise<QueueStats[]> {
    return assembleQueueStats(
      await this.#all('SELECT name, suspended FROM queues'),
      await this.countsByQueueAndState(),
      await this.#all(`SELECT queue, MIN(enqueued_at) AS oldest FROM runs WHERE state = 'available' GROUP BY queue`),
    );
  }

  async setQueueSuspended(name: string, suspended: boolean, now: number): Promise<void> {
    await this.#run(
      'INSERT INTO queues (name, suspended, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET suspended = excluded.suspended, updated_at = excluded.updated_at',
      [name, suspended ? 1 : 0, now],
    );
  }

  async isQueueSuspended(name: string): Promise<boolean> {
    return (await this.#get('SELECT 1 AS yes FROM queues WHERE name = $1 AND suspended = 1', [name])) !== undefined;
  }

  async queuesWithAvailableRuns(now: number): Promise<string[]> {
    return (await this.#all(`SELECT DISTINCT queue FROM runs WHERE state = 'available' AND available_at <= $1`, [now])).map((row) => str(row, 'queue'));
  }

  async pendingRetries(now: number): Promise<Array<{ id: string; queue: string; availableAt: number }>> {
    return (await this.#all(`SELECT id, queue, available_at FROM runs WHERE state = 'available' AND available_at > $1`, [now])).map((row) => ({
      id: str(row, 'id'),
      queue: str(row, 'queue'),
      availableAt: num(row, 'available_at'),
    }));
  }

  deleteFinishedBefore(cutoff: number, batch: number): Promise<number> {
    return this.transaction(async (tx) => {
      const self = tx as PostgresStore;
      // SKIP LOCKED: a run another replica is deleting (or anything holds) is left for the next batch.
      const ids = (await self.#all(
        `SELECT id FROM runs WHERE finished_at < $1 AND state NOT IN ('available', 'claimed', 'started') ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [cutoff, batch],
      )).map((row) => str(row, 'id'));
      if (ids.length === 0) return 0;
      for (const table of ['log_lines', 'steps', 'event_replies', 'run_attempts', 'dataclips']) {
        await self.#run(`DELETE FROM ${table} WHERE run_id = ANY($1::text[])`, [ids]);
      }
      await self.#run('DELETE FROM runs WHERE id = ANY($1::text[])', [ids]);
      return ids.length;
    });
  }

  // ---- everything else ----

  async setWebhookResponseOnce(runId: string, response: WebhookResponse): Promise<void> {
    await this.#run('UPDATE runs SET webhook_response = $1 WHERE id = $2 AND webhook_response IS NULL', [JSON.stringify(response), runId]);
  }

  async insertDataclip(id: string, runId: string, type: string, body: string, now: number): Promise<void> {
    await this.#run('INSERT INTO dataclips (id, run_id, type, body, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING', [id, runId, type, body, now]);
  }

  async getDataclip(id: string): Promise<DataclipRecord | undefined> {
    const row = await this.#get('SELECT id, run_id, body FROM dataclips WHERE id = $1', [id]);
    return row ? { id: str(row, 'id'), runId: optStr(row, 'run_id'), body: str(row, 'body') } : undefined;
  }

  async getStep(stepId: string): Promise<(StepRecord & { runId: string }) | undefined> {
    const row = await this.#get('SELECT * FROM steps WHERE id = $1', [stepId]);
    return row ? { ...toStep(row), runId: str(row, 'run_id') } : undefined;
  }

  async insertStep(step: NewStep): Promise<void> {
    await this.#run(
      'INSERT INTO steps (id, run_id, attempt, job_id, input_dataclip_id, started_at) VALUES ($1, $2, $3, $4, $5, $6)',
      [step.id, step.runId, step.attempt, step.jobId, step.inputDataclipId, step.startedAt],
    );
  }

  async completeStep(step: StepOutcome): Promise<void> {
    await this.#run(
      `UPDATE steps SET output_dataclip_id = $1, output_dataclip_error = $2, reason = $3, error_type = $4, error_message = $5, mem = $6,
         duration_ms = $7, thread_id = $8, finished_at = $9 WHERE id = $10`,
      [step.outputDataclipId, step.outputDataclipError, step.reason, step.errorType, step.errorMessage, JSON.stringify(step.mem ?? null),
        step.durationMs, step.threadId, step.finishedAt, step.id],
    );
  }

  async getSteps(runId: string): Promise<StepRecord[]> {
    return (await this.#all('SELECT * FROM steps WHERE run_id = $1 ORDER BY attempt, started_at, seq', [runId])).map(toStep);
  }

  async insertLog(line: NewLogLine): Promise<string> {
    const id = randomUUID();
    await this.#run(
      'INSERT INTO log_lines (id, run_id, attempt, step_id, level, source, message, timestamp) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
      [id, line.runId, line.attempt, line.stepId, line.level, line.source, JSON.stringify(line.message), line.timestamp],
    );
    return id;
  }

  async getLogs(runId: string): Promise<LogRecord[]> {
    return (await this.#all('SELECT * FROM log_lines WHERE run_id = $1 ORDER BY seq', [runId])).map(toLog);
  }

  async getEventReply(runId: string, key: string): Promise<unknown> {
    const row = await this.#get('SELECT reply FROM event_replies WHERE run_id = $1 AND key = $2', [runId, key]);
    return row ? (JSON.parse(str(row, 'reply')) as unknown) : undefined;
  }

  async putEventReply(runId: string, key: string, reply: unknown): Promise<void> {
    await this.#run('INSERT INTO event_replies (run_id, key, reply) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [runId, key, JSON.stringify(reply)]);
  }

  async putCredential(id: string, bodyJson: string, now: number): Promise<void> {
    await this.#run(
      'INSERT INTO credentials (id, body, updated_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at',
      [id, bodyJson, now],
    );
  }

  async getCredential(id: string): Promise<unknown> {
    const row = await this.#get('SELECT body FROM credentials WHERE id = $1', [id]);
    return row ? (JSON.parse(str(row, 'body')) as unknown) : undefined;
  }

  async upsertWorker(worker: WorkerRecord): Promise<void> {
    await this.#run(
      `INSERT INTO workers (id, name, capacity, queues, connected_at, last_seen_at, disconnected_at) VALUES ($1, $2, $3, $4, $5, $6, NULL)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, capacity = excluded.capacity, queues = excluded.queues,
         connected_at = excluded.connected_at, last_seen_at = excluded.last_seen_at, disconnected_at = NULL`,
      [worker.id, worker.name, worker.capacity, JSON.stringify(worker.queues), worker.connectedAt, worker.lastSeenAt],
    );
  }

  async touchWorker(id: string, name: string | null, now: number): Promise<void> {
    await this.#run('UPDATE workers SET last_seen_at = $1, name = COALESCE($2, name) WHERE id = $3', [now, name, id]);
  }

  async markWorkerDisconnected(id: string, now: number): Promise<void> {
    await this.#run('UPDATE workers SET disconnected_at = $1, last_seen_at = $1 WHERE id = $2', [now, id]);
  }
  async recentAttempts(since: number, limit: number): Promise<LaneAttempt[]> {
    const open = (await this.#all(`${laneAttemptColumns(true)} WHERE a.finished_at IS NULL`)).map(toLaneAttempt);
    const ended = (await this.#all(`${laneAttemptColumns(false)} WHERE a.claimed_at >= $1 AND a.finished_at IS NOT NULL ORDER BY a.claimed_at DESC LIMIT $2`, [since, limit])).map(toLaneAttempt);
    return byClaim(open, ended);
  }

  async finishedSince(since: number): Promise<Map<string, number>> {
    const rows = await this.#all('SELECT r.queue, COUNT(*) AS n FROM run_attempts a JOIN runs r ON r.id = a.run_id WHERE a.finished_at >= $1 GROUP BY r.queue', [since]);
    return new Map(rows.map((row) => [str(row, 'queue'), num(row, 'n')]));
  }

  async retryDeadLetter(runId: string, now: number): Promise<boolean> {
    return (await this.#run(
      `UPDATE runs SET state = 'available', dead_letter = 0, max_attempts = attempts + 1, worker_id = NULL, worker_name = NULL,
         claimed_at = NULL, started_at = NULL, finished_at = NULL, lease_expires_at = NULL, lease_mode = NULL, token_hash = NULL,
         enqueued_at = $1, available_at = $1
       WHERE id = $2 AND dead_letter = 1`,
      [now, runId],
    )) > 0;
  }


  async publish(message: string): Promise<void> {
    await this.#run('SELECT pg_notify($1, $2)', [NOTIFY_CHANNEL, message]);
  }

  async subscribe(handlers: { onMessage: (message: string) => void; onResync: () => void }): Promise<() => Promise<void>> {
    const listener = new PostgresListener(this.#shared.url, NOTIFY_CHANNEL, handlers);
    await listener.start();
    return () => listener.stop();
  }

  async putSettingOnce(name: string, value: string): Promise<string> {
    await this.#run('INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, value]);
    return str((await this.#get('SELECT value FROM settings WHERE name = $1', [name])) ?? { value }, 'value');
  }
}
