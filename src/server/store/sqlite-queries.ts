/**
 * The SQL of the SQLite store (`node:sqlite`, WAL): runs, their attempts,
 * dataclips, steps, log lines, idempotent event replies, credentials, workers
 * and queue flags. Every method is synchronous and the multi-row ones run in
 * one transaction, so a claim or a completion is all or nothing. Times are
 * epoch milliseconds. `SqliteStore` (sqlite-store.ts) puts the async `Store`
 * interface in front of it.
 *
 * States: open → closed. Every method after `close()` throws.
 */
import { DatabaseSync } from 'node:sqlite';
import type { SQLInputValue, StatementSync } from 'node:sqlite';
import { randomUUID } from 'node:crypto';
import type { RunPlan, RunState, WebhookResponse } from '../../protocol/index.ts';
import { WILDCARD } from '../../protocol/index.ts';
import { ServerError } from '../server-error.ts';
import { RUN_MEMORY_PATH, fitMemory } from './claim-memory.ts';
import { migrate } from './sqlite-migrations.ts';
import { assembleQueueStats, byClaim, laneAttemptColumns, num, optStr, str, toAttempt, toLaneAttempt, toLog, toRun, toStep } from './store-rows.ts';
import type { Row } from './store-rows.ts';
import type {
  AttemptRecord, ClaimRequest, ClaimedRow, DataclipRecord, LaneAttempt, LeaseMode, LogRecord, NewLogLine, NewRun, NewStep, QueueStats, RunFilter,
  RunOutcomeFields, RunRecord, StepOutcome, StepRecord, WorkerRecord,
} from './store.ts';

/** Bound on the prepared-statement cache (`#prepare`). */
const MAX_CACHED_STATEMENTS = 256;

export class SqliteQueries {
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  #closed = false;

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** Opens (or creates) the database, turns on WAL and applies pending migrations. */
  static open(dbPath: string): SqliteQueries {
    const db = new DatabaseSync(dbPath);
    try {
      if (dbPath !== ':memory:') db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = NORMAL');
      db.exec('PRAGMA busy_timeout = 5000');
      db.exec('PRAGMA foreign_keys = ON');
      migrate(db);
    } catch (error) {
      db.close();
      throw new ServerError('STORE_OPEN', `cannot open database ${dbPath}`, { cause: error });
    }
    return new SqliteQueries(db);
  }

  get isOpen(): boolean {
    return !this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  /** Runs `fn` in one IMMEDIATE transaction; nested calls join the outer one. */
  transaction<T>(fn: () => T): T {
    this.#assertOpen();
    if (this.#db.isTransaction) return fn();
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      this.#db.exec('COMMIT');
      return result;
    } catch (error) {
      // A failed COMMIT (an I/O error, a full disk) has already rolled back: a second ROLLBACK would
      // throw "no transaction is active" and hide the error that matters.
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  /** `transaction` for an async body; the caller (`SqliteStore`) keeps every other call out until it ends. */
  async transactionAsync<T>(fn: () => Promise<T>): Promise<T> {
    this.#assertOpen();
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const result = await fn();
      this.#db.exec('COMMIT');
      return result;
    } catch (error) {
      if (this.#db.isOpen && this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  /** A trivial query, for `/readyz`. */
  ping(): boolean {
    if (this.#closed) return false;
    return this.#db.prepare('SELECT 1 AS ok').get()?.['ok'] === 1;
  }

  #assertOpen(): void {
    if (this.#closed) throw new ServerError('STORE_CLOSED', 'the store is closed');
  }

  /**
   * A prepared statement per SQL text, reused: preparing (parsing and planning
   * the SQL) costs more than running most of these statements. The texts are
   * this file's constants plus one claim query per shape of chain, so the
   * cache is small; the bound only guards against a surprise.
   */
  #prepare(sql: string): StatementSync {
    this.#assertOpen();
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      if (this.#statements.size >= MAX_CACHED_STATEMENTS) this.#statements.clear();
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #get(sql: string, ...params: SQLInputValue[]): Row | undefined {
    return this.#prepare(sql).get(...params) as Row | undefined;
  }

  #all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.#prepare(sql).all(...params) as Row[];
  }

  #run(sql: string, ...params: SQLInputValue[]): number {
    return Number(this.#prepare(sql).run(...params).changes);
  }

  // ---- runs ----

  /** Stores a new run and its input dataclip. */
  insertRun(input: NewRun): RunRecord {
    return this.transaction(() => {
      const dataclipId = randomUUID();
      this.#run('INSERT INTO dataclips (id, run_id, type, body, created_at) VALUES (?, ?, ?, ?, ?)', dataclipId, input.id, 'input', input.inputJson, input.now);
      const plan: RunPlan = { ...input.plan, id: input.id, dataclip_id: dataclipId };
      this.#run(
        `INSERT INTO runs (id, queue, priority, state, max_attempts, idempotency_key, plan, dataclip_id, run_timeout_ms, created_at, enqueued_at, available_at)
         VALUES (?, ?, ?, 'available', ?, ?, ?, ?, ?, ?, ?, ?)`,
        input.id, input.queue, input.priority, input.maxAttempts, input.idempotencyKey, JSON.stringify(plan), dataclipId, input.runTimeoutMs, input.now, input.now,
        input.notBefore ?? input.now,
      );
      const run = this.getRun(input.id);
      if (!run) throw new ServerError('STORE_CONFLICT', 'inserted run vanished');
      return run;
    });
  }

  getRun(id: string): RunRecord | undefined {
    const row = this.#get('SELECT * FROM runs WHERE id = ?', id);
    return row ? toRun(row) : undefined;
  }

  getRunByIdempotencyKey(key: string): RunRecord | undefined {
    const row = this.#get('SELECT * FROM runs WHERE idempotency_key = ?', key);
    return row ? toRun(row) : undefined;
  }

  listRuns(filter: RunFilter): RunRecord[] {
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
    return this.#all(`SELECT * FROM runs ${clause} ORDER BY seq DESC LIMIT ?`, ...params, filter.limit).map(toRun);
  }

  /**
   * Claims up to `demand` runs for one lane, atomically. Named queues come
   * first in chain order, then (with `*`) every other queue; within that,
   * higher priority first, then oldest enqueue. Suspended queues and runs
   * waiting out a retry backoff are skipped.
   */
  claim(request: ClaimRequest): ClaimedRow[] {
    const named = request.chain.filter((q) => q !== WILDCARD);
    const wildcard = request.chain.includes(WILDCARD);
    if (named.length === 0 && !wildcard) return [];
    return this.transaction(() => {
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
      for (const queue of named) {
        if (rows.length >= request.demand) break;
        if (seen.has(queue)) continue;
        seen.add(queue);
        if (this.isQueueSuspended(queue)) continue;
        rows.push(
          ...this.#all(
            `${columns} WHERE state = 'available' AND queue = ? AND available_at <= ? ${memoryClause} ${order}`,
            ...memoryParams, queue, request.now, ...fitParams, request.demand - rows.length,
          ),
        );
      }
      if (wildcard && rows.length < request.demand) {
        const excluded = [...seen];
        rows.push(
          ...this.#all(
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
        this.#run(
          `UPDATE runs SET state = 'claimed', attempts = ?, worker_id = ?, worker_name = ?, claimed_at = ?,
             lease_expires_at = ?, lease_mode = ?, token_hash = NULL WHERE id = ? AND state = 'available'`,
          attempt, request.workerId, request.workerName, request.now,
          heartbeat ? request.now + (request.heartbeatLeaseMs ?? 0) : request.now + runTimeoutMs + request.graceMs,
          heartbeat ? 'heartbeat' : 'timeout', id,
        );
        const memoryMb = memory === undefined ? null : Math.ceil(num(row, 'memory_mb'));
        this.#run(
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
  setTokenHash(runId: string, attempt: number, tokenHash: string): void {
    this.#run(`UPDATE runs SET token_hash = ? WHERE id = ? AND attempts = ? AND state = 'claimed'`, tokenHash, runId, attempt);
  }

  /** `claimed → started`. Returns false when the run was not claimed by this attempt. */
  markStarted(runId: string, attempt: number, now: number, versions: Record<string, string> | null): boolean {
    return this.transaction(() => {
      const changed = this.#run(
        `UPDATE runs SET state = 'started', started_at = ?, versions = ? WHERE id = ? AND attempts = ? AND state = 'claimed'`,
        now, versions === null ? null : JSON.stringify(versions), runId, attempt,
      );
      if (changed > 0) this.#run(`UPDATE run_attempts SET state = 'started', started_at = ? WHERE run_id = ? AND attempt = ?`, now, runId, attempt);
      return changed > 0;
    });
  }

  /** Extends the lease of an in-flight attempt; the first heartbeat switches it to heartbeat leasing. */
  extendLease(runId: string, attempt: number, leaseExpiresAt: number, mode: LeaseMode | null): void {
    if (mode === null) {
      this.#run(
        `UPDATE runs SET lease_expires_at = ? WHERE id = ? AND attempts = ? AND state IN ('claimed', 'started') AND lease_mode = 'heartbeat'`,
        leaseExpiresAt, runId, attempt,
      );
    } else {
      this.#run(
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
  finishRun(runId: string, attempt: number, fields: RunOutcomeFields, deadLetter: boolean): boolean {
    return this.transaction(() => {
      const changed = this.#run(
        `UPDATE runs SET state = ?, reason = ?, error_type = ?, error_message = ?, finished_at = ?, lease_expires_at = NULL,
           final_dataclip_id = COALESCE(?, final_dataclip_id), final_state = COALESCE(?, final_state), dead_letter = ?
         WHERE id = ? AND attempts = ? AND state IN ('available', 'claimed', 'started')`,
        fields.state, fields.reason, fields.errorType, fields.errorMessage, fields.now,
        fields.finalDataclipId ?? null, fields.finalState === undefined ? null : JSON.stringify(fields.finalState), deadLetter ? 1 : 0,
        runId, attempt,
      );
      if (changed > 0) this.#finishAttempt(runId, attempt, fields);
      return changed > 0;
    });
  }

  /** Puts an in-flight attempt that ended badly back in its queue, available again at `availableAt`. */
  requeue(runId: string, attempt: number, fields: RunOutcomeFields, availableAt: number): boolean {
    return this.transaction(() => {
      const changed = this.#run(
        `UPDATE runs SET state = 'available', reason = ?, error_type = ?, error_message = ?, worker_id = NULL, worker_name = NULL,
           claimed_at = NULL, started_at = NULL, finished_at = NULL, lease_expires_at = NULL, lease_mode = NULL, token_hash = NULL,
           enqueued_at = ?, available_at = ?
         WHERE id = ? AND attempts = ? AND state IN ('claimed', 'started')`,
        fields.reason, fields.errorType, fields.errorMessage, fields.now, availableAt, runId, attempt,
      );
      if (changed > 0) this.#finishAttempt(runId, attempt, fields);
      return changed > 0;
    });
  }

  #finishAttempt(runId: string, attempt: number, fields: RunOutcomeFields): void {
    this.#run(
      `UPDATE run_attempts SET state = ?, finished_at = ?, error_type = ?, error_message = ? WHERE run_id = ? AND attempt = ?`,
      fields.state, fields.now, fields.errorType, fields.errorMessage, runId, attempt,
    );
  }

  /**
   * After a restart: no worker could beat while the server was down, so every
   * heartbeat lease runs at least until `leaseExpiresAt`. Returns how many moved.
   */
  renewHeartbeatLeases(leaseExpiresAt: number): number {
    return this.#run(
      `UPDATE runs SET lease_expires_at = ? WHERE state IN ('claimed', 'started') AND lease_mode = 'heartbeat' AND lease_expires_at < ?`,
      leaseExpiresAt, leaseExpiresAt,
    );
  }

  /** In-flight runs whose lease lapsed at `now`. */
  expiredLeases(now: number): RunRecord[] {
    return this.#all(`SELECT * FROM runs WHERE state IN ('claimed', 'started') AND lease_expires_at <= ?`, now).map(toRun);
  }

  getAttempts(runId: string): AttemptRecord[] {
    return this.#all('SELECT * FROM run_attempts WHERE run_id = ? ORDER BY attempt', runId).map(toAttempt);
  }

  /** Runs per worker that are claimed or started, for `GET /api/workers`. */
  activeRunsByWorker(): Map<string, string[]> {
    const result = new Map<string, string[]>();
    for (const row of this.#all(`SELECT id, worker_id FROM runs WHERE state IN ('claimed', 'started') AND worker_id IS NOT NULL ORDER BY seq`)) {
      const workerId = str(row, 'worker_id');
      const list = result.get(workerId) ?? [];
      list.push(str(row, 'id'));
      result.set(workerId, list);
    }
    return result;
  }

  /** Counts of runs by queue and state, for `/metrics`. */
  countsByQueueAndState(): Array<{ queue: string; state: RunState; count: number }> {
    return this.#all('SELECT queue, state, COUNT(*) AS n FROM runs GROUP BY queue, state').map((row) => ({
      queue: str(row, 'queue'),
      state: str(row, 'state') as RunState,
      count: num(row, 'n'),
    }));
  }

  /** Queues that hold runs or were suspended, with counts and the oldest available run. */
  queueStats(): QueueStats[] {
    return assembleQueueStats(
      this.#all('SELECT name, suspended FROM queues'),
      this.countsByQueueAndState(),
      this.#all(`SELECT queue, MIN(enqueued_at) AS oldest FROM runs WHERE state = 'available' GROUP BY queue`),
    );
  }

  setQueueSuspended(name: string, suspended: boolean, now: number): void {
    this.#run(
      'INSERT INTO queues (name, suspended, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET suspended = excluded.suspended, updated_at = excluded.updated_at',
      name, suspended ? 1 : 0, now,
    );
  }

  isQueueSuspended(name: string): boolean {
    return num(this.#get('SELECT COUNT(*) AS n FROM queues WHERE name = ? AND suspended = 1', name) ?? { n: 0 }, 'n') > 0;
  }

  /** Queues holding runs that are available now (used to notify workers after a resume or a restart). */
  queuesWithAvailableRuns(now: number): string[] {
    return this.#all(`SELECT DISTINCT queue FROM runs WHERE state = 'available' AND available_at <= ?`, now).map((row) => str(row, 'queue'));
  }

  /** Available runs still waiting out a retry backoff: when each becomes claimable. */
  pendingRetries(now: number): Array<{ id: string; queue: string; availableAt: number }> {
    return this.#all(`SELECT id, queue, available_at FROM runs WHERE state = 'available' AND available_at > ?`, now).map((row) => ({
      id: str(row, 'id'),
      queue: str(row, 'queue'),
      availableAt: num(row, 'available_at'),
    }));
  }

  /**
   * Retention: one batch of runs finished before `cutoff`, with everything
   * that hangs off them, in one short transaction (claims wait at most one
   * batch).
   */
  deleteFinishedBefore(cutoff: number, batch: number): number {
    return this.transaction(() => {
      const ids = this.#all(
        `SELECT id FROM runs INDEXED BY runs_finished WHERE finished_at < ? AND state NOT IN ('available', 'claimed', 'started') ORDER BY finished_at LIMIT ?`,
        cutoff, batch,
      ).map((row) => str(row, 'id'));
      if (ids.length === 0) return 0;
      const list = ids.map(() => '?').join(', ');
      for (const table of ['log_lines', 'steps', 'event_replies', 'run_attempts', 'dataclips']) {
        this.#run(`DELETE FROM ${table} WHERE run_id IN (${list})`, ...ids);
      }
      this.#run(`DELETE FROM runs WHERE id IN (${list})`, ...ids);
      return ids.length;
    });
  }

  // ---- webhook response ----

  /** Keeps the first `webhook_response` a run produced; later ones are ignored. */
  setWebhookResponseOnce(runId: string, response: WebhookResponse): void {
    this.#run('UPDATE runs SET webhook_response = ? WHERE id = ? AND webhook_response IS NULL', JSON.stringify(response), runId);
  }

  // ---- dataclips ----

  insertDataclip(id: string, runId: string, type: string, body: string, now: number): void {
    this.#run('INSERT OR IGNORE INTO dataclips (id, run_id, type, body, created_at) VALUES (?, ?, ?, ?, ?)', id, runId, type, body, now);
  }

  getDataclip(id: string): DataclipRecord | undefined {
    const row = this.#get('SELECT id, run_id, body FROM dataclips WHERE id = ?', id);
    return row ? { id: str(row, 'id'), runId: optStr(row, 'run_id'), body: str(row, 'body') } : undefined;
  }

  // ---- steps ----

  getStep(stepId: string): (StepRecord & { runId: string }) | undefined {
    const row = this.#get('SELECT * FROM steps WHERE id = ?', stepId);
    return row ? { ...toStep(row), runId: str(row, 'run_id') } : undefined;
  }

  insertStep(step: NewStep): void {
    this.#run(
      'INSERT INTO steps (id, run_id, attempt, job_id, input_dataclip_id, started_at) VALUES (?, ?, ?, ?, ?, ?)',
      step.id, step.runId, step.attempt, step.jobId, step.inputDataclipId, step.startedAt,
    );
  }

  completeStep(step: StepOutcome): void {
    this.#run(
      `UPDATE steps SET output_dataclip_id = ?, output_dataclip_error = ?, reason = ?, error_type = ?, error_message = ?, mem = ?,
         duration_ms = ?, thread_id = ?, finished_at = ? WHERE id = ?`,
      step.outputDataclipId, step.outputDataclipError, step.reason, step.errorType, step.errorMessage, JSON.stringify(step.mem ?? null),
      step.durationMs, step.threadId, step.finishedAt, step.id,
    );
  }

  getSteps(runId: string): StepRecord[] {
    return this.#all('SELECT * FROM steps WHERE run_id = ? ORDER BY attempt, started_at, rowid', runId).map(toStep);
  }

  // ---- logs ----

  insertLog(line: NewLogLine): string {
    const id = randomUUID();
    this.#run(
      'INSERT INTO log_lines (id, run_id, attempt, step_id, level, source, message, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      id, line.runId, line.attempt, line.stepId, line.level, line.source, JSON.stringify(line.message), line.timestamp,
    );
    return id;
  }

  getLogs(runId: string): LogRecord[] {
    return this.#all('SELECT * FROM log_lines WHERE run_id = ? ORDER BY seq', runId).map(toLog);
  }

  // ---- idempotent event replies ----

  getEventReply(runId: string, key: string): unknown {
    const row = this.#get('SELECT reply FROM event_replies WHERE run_id = ? AND key = ?', runId, key);
    return row ? (JSON.parse(str(row, 'reply')) as unknown) : undefined;
  }

  putEventReply(runId: string, key: string, reply: unknown): void {
    this.#run('INSERT OR IGNORE INTO event_replies (run_id, key, reply) VALUES (?, ?, ?)', runId, key, JSON.stringify(reply));
  }

  // ---- credentials ----

  putCredential(id: string, bodyJson: string, now: number): void {
    this.#run(
      'INSERT INTO credentials (id, body, updated_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at',
      id, bodyJson, now,
    );
  }

  getCredential(id: string): unknown {
    const row = this.#get('SELECT body FROM credentials WHERE id = ?', id);
    return row ? (JSON.parse(str(row, 'body')) as unknown) : undefined;
  }

  // ---- workers ----

  upsertWorker(worker: WorkerRecord): void {
    this.#run(
      `INSERT INTO workers (id, name, capacity, queues, connected_at, last_seen_at, disconnected_at) VALUES (?, ?, ?, ?, ?, ?, NULL)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, capacity = excluded.capacity, queues = excluded.queues,
         connected_at = excluded.connected_at, last_seen_at = excluded.last_seen_at, disconnected_at = NULL`,
      worker.id, worker.name, worker.capacity, JSON.stringify(worker.queues), worker.connectedAt, worker.lastSeenAt,
    );
  }

  touchWorker(id: string, name: string | null, now: number): void {
    this.#run('UPDATE workers SET last_seen_at = ?, name = COALESCE(?, name) WHERE id = ?', now, name, id);
  }

  markWorkerDisconnected(id: string, now: number): void {
    this.#run('UPDATE workers SET disconnected_at = ?, last_seen_at = ? WHERE id = ?', now, now, id);
  }
  recentAttempts(since: number, limit: number): LaneAttempt[] {
    const open = this.#all(`${laneAttemptColumns(true)} WHERE a.finished_at IS NULL`).map(toLaneAttempt);
    const ended = this.#all(`${laneAttemptColumns(false)} WHERE a.claimed_at >= ? AND a.finished_at IS NOT NULL ORDER BY a.claimed_at DESC LIMIT ?`, since, limit).map(toLaneAttempt);
    return byClaim(open, ended);
  }

  finishedSince(since: number): Map<string, number> {
    const rows = this.#all('SELECT r.queue, COUNT(*) AS n FROM run_attempts a JOIN runs r ON r.id = a.run_id WHERE a.finished_at >= ? GROUP BY r.queue', since);
    return new Map(rows.map((row) => [str(row, 'queue'), num(row, 'n')]));
  }

  retryDeadLetter(runId: string, now: number): boolean {
    return this.#run(
      `UPDATE runs SET state = 'available', dead_letter = 0, max_attempts = attempts + 1, worker_id = NULL, worker_name = NULL,
         claimed_at = NULL, started_at = NULL, finished_at = NULL, lease_expires_at = NULL, lease_mode = NULL, token_hash = NULL,
         enqueued_at = ?, available_at = ?
       WHERE id = ? AND dead_letter = 1`,
      now, now, runId,
    ) > 0;
  }


  putSettingOnce(name: string, value: string): string {
    this.#run('INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', name, value);
    return str(this.#get('SELECT value FROM settings WHERE name = ?', name) ?? { value }, 'value');
  }
}
