/**
 * The PostgreSQL store: the same `Store` as SQLite, for several `lanes
 * server` replicas on one database. Claims lock the rows they take with
 * `FOR UPDATE SKIP LOCKED`, so two replicas claiming at once never hand out
 * one run and never wait on each other's rows; every other write is guarded
 * by its WHERE clause (`state IN (…)`, `attempts = $n`), which PostgreSQL
 * re-checks after a concurrent update, so a late or repeated write changes
 * nothing.
 *
 * The SQL lives by aggregate in the `postgres-*.ts` files beside this one,
 * as functions over a `PostgresConnection` (postgres-connection.ts). A store
 * made by `open` uses the pool; the handle given to `transaction`'s callback
 * runs every call on the transaction's one client.
 *
 * States: open → closed.
 */
import pg from 'pg';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { RunState, WebhookResponse } from '../../protocol/index.ts';
import { ServerError } from '../server-error.ts';
import { PostgresConnection } from './postgres-connection.ts';
import { migratePostgres } from './postgres-migrations.ts';
import * as runs from './postgres-runs.ts';
import * as claims from './postgres-claims.ts';
import * as runEvents from './postgres-run-events.ts';
import * as queues from './postgres-queues.ts';
import * as listings from './postgres-listings.ts';
import * as credentials from './postgres-credentials.ts';
import * as workers from './postgres-workers.ts';
import { num } from './store-rows.ts';
import type {
  AttemptRecord, ClaimRequest, ClaimedRow, DataclipRecord, LaneAttempt, LeaseMode, LogRecord, NewLogLine, NewRun, NewStep,
  QueueStats, RunFilter, RunOutcomeFields, RunRecord, StepOutcome, StepRecord, Store, WorkerRecord,
} from './store.ts';
import { describeDatabaseUrl } from './store-url.ts';
import { PostgresListener } from './postgres-listener.ts';

/** Connections per replica: claims, channel events and API reads share them. */
const POOL_SIZE = 10;

/** The NOTIFY channel every Lanes server on a database listens on. */
const NOTIFY_CHANNEL = 'lanes_events';

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly #db: PostgresConnection;
  /** For LISTEN, which needs its own connection outside the pool. */
  readonly #url: string;

  private constructor(db: PostgresConnection, url: string) {
    this.#db = db;
    this.#url = url;
  }

  /** Connects, applies pending migrations (safe with several replicas starting at once). */
  static async open(url: string, logger: Logger): Promise<PostgresStore> {
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
    return new PostgresStore(PostgresConnection.over(pool, logger), url);
  }

  /** The pool, for what needs its own connection (LISTEN). */
  get pool(): Pool {
    return this.#db.pool;
  }

  get isOpen(): boolean {
    return this.#db.isOpen;
  }

  close(): Promise<void> {
    return this.#db.close();
  }

  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    return this.#db.transaction((tx) => fn(tx === this.#db ? this : new PostgresStore(tx, this.#url)));
  }

  async ping(): Promise<boolean> {
    if (!this.#db.isOpen) return false;
    try {
      return num((await this.#db.get('SELECT 1 AS ok')) ?? { ok: 0 }, 'ok') === 1;
    } catch {
      return false;
    }
  }

  insertRun(input: NewRun): Promise<RunRecord> { return runs.insertRun(this.#db, input); }
  getRun(id: string): Promise<RunRecord | undefined> { return runs.getRun(this.#db, id); }
  getRunByIdempotencyKey(key: string): Promise<RunRecord | undefined> { return runs.getRunByIdempotencyKey(this.#db, key); }
  listRuns(filter: RunFilter): Promise<RunRecord[]> { return runs.listRuns(this.#db, filter); }
  setWebhookResponseOnce(runId: string, response: WebhookResponse): Promise<void> { return runs.setWebhookResponseOnce(this.#db, runId, response); }
  retryDeadLetter(runId: string, now: number): Promise<boolean> { return runs.retryDeadLetter(this.#db, runId, now); }
  deleteFinishedBefore(cutoff: number, batch: number): Promise<number> { return runs.deleteFinishedBefore(this.#db, cutoff, batch); }
  claim(request: ClaimRequest): Promise<ClaimedRow[]> { return claims.claim(this.#db, request); }
  setTokenHash(runId: string, attempt: number, tokenHash: string): Promise<void> { return claims.setTokenHash(this.#db, runId, attempt, tokenHash); }
  markStarted(runId: string, attempt: number, now: number, versions: Record<string, string> | null): Promise<boolean> {
    return claims.markStarted(this.#db, runId, attempt, now, versions);
  }
  extendLease(runId: string, attempt: number, leaseExpiresAt: number, mode: LeaseMode | null): Promise<void> {
    return claims.extendLease(this.#db, runId, attempt, leaseExpiresAt, mode);
  }
  finishRun(runId: string, attempt: number, fields: RunOutcomeFields, deadLetter: boolean): Promise<boolean> {
    return claims.finishRun(this.#db, runId, attempt, fields, deadLetter);
  }
  requeue(runId: string, attempt: number, fields: RunOutcomeFields, availableAt: number): Promise<boolean> {
    return claims.requeue(this.#db, runId, attempt, fields, availableAt);
  }
  renewHeartbeatLeases(leaseExpiresAt: number): Promise<number> { return claims.renewHeartbeatLeases(this.#db, leaseExpiresAt); }
  expiredLeases(now: number): Promise<RunRecord[]> { return claims.expiredLeases(this.#db, now); }
  insertDataclip(id: string, runId: string, type: string, body: string, now: number): Promise<void> {
    return runEvents.insertDataclip(this.#db, id, runId, type, body, now);
  }
  getDataclip(id: string): Promise<DataclipRecord | undefined> { return runEvents.getDataclip(this.#db, id); }
  getStep(stepId: string): Promise<(StepRecord & { runId: string }) | undefined> { return runEvents.getStep(this.#db, stepId); }
  insertStep(step: NewStep): Promise<void> { return runEvents.insertStep(this.#db, step); }
  completeStep(step: StepOutcome): Promise<void> { return runEvents.completeStep(this.#db, step); }
  getSteps(runId: string): Promise<StepRecord[]> { return runEvents.getSteps(this.#db, runId); }
  insertLog(line: NewLogLine): Promise<string> { return runEvents.insertLog(this.#db, line); }
  getLogs(runId: string): Promise<LogRecord[]> { return runEvents.getLogs(this.#db, runId); }
  getEventReply(runId: string, key: string): Promise<unknown> { return runEvents.getEventReply(this.#db, runId, key); }
  putEventReply(runId: string, key: string, reply: unknown): Promise<void> { return runEvents.putEventReply(this.#db, runId, key, reply); }
  countsByQueueAndState(): Promise<Array<{ queue: string; state: RunState; count: number }>> { return queues.countsByQueueAndState(this.#db); }
  queueStats(): Promise<QueueStats[]> { return queues.queueStats(this.#db); }
  setQueueSuspended(name: string, suspended: boolean, now: number): Promise<void> { return queues.setQueueSuspended(this.#db, name, suspended, now); }
  isQueueSuspended(name: string): Promise<boolean> { return queues.isQueueSuspended(this.#db, name); }
  queuesWithAvailableRuns(now: number): Promise<string[]> { return queues.queuesWithAvailableRuns(this.#db, now); }
  pendingRetries(now: number): Promise<Array<{ id: string; queue: string; availableAt: number }>> { return queues.pendingRetries(this.#db, now); }
  getAttempts(runId: string): Promise<AttemptRecord[]> { return listings.getAttempts(this.#db, runId); }
  activeRunsByWorker(): Promise<Map<string, string[]>> { return listings.activeRunsByWorker(this.#db); }
  recentAttempts(since: number, limit: number): Promise<LaneAttempt[]> { return listings.recentAttempts(this.#db, since, limit); }
  finishedSince(since: number): Promise<Map<string, number>> { return listings.finishedSince(this.#db, since); }
  putCredential(id: string, bodyJson: string, now: number): Promise<void> { return credentials.putCredential(this.#db, id, bodyJson, now); }
  getCredential(id: string): Promise<unknown> { return credentials.getCredential(this.#db, id); }
  putSettingOnce(name: string, value: string): Promise<string> { return credentials.putSettingOnce(this.#db, name, value); }
  upsertWorker(worker: WorkerRecord): Promise<void> { return workers.upsertWorker(this.#db, worker); }
  touchWorker(id: string, name: string | null, now: number): Promise<void> { return workers.touchWorker(this.#db, id, name, now); }
  markWorkerDisconnected(id: string, now: number): Promise<void> { return workers.markWorkerDisconnected(this.#db, id, now); }
  async publish(message: string): Promise<void> {
    await this.#db.run('SELECT pg_notify($1, $2)', [NOTIFY_CHANNEL, message]);
  }

  async subscribe(handlers: { onMessage: (message: string) => void; onResync: () => void }): Promise<() => Promise<void>> {
    const listener = new PostgresListener(this.#url, NOTIFY_CHANNEL, handlers);
    await listener.start();
    return () => listener.stop();
  }
}
