/**
 * The embedded store: the async `Store` interface in front of the
 * synchronous SQLite queries (`sqlite-runs.ts`, `sqlite-claims.ts` and the
 * other `sqlite-*.ts` files, by aggregate) over one `node:sqlite` connection
 * (`sqlite-connection.ts`).
 *
 * One connection means one transaction at a time, and `transaction(fn)`
 * awaits `fn`: while it runs, any call made outside the transaction waits
 * for it to end instead of slipping into it (and being rolled back with it).
 * The handle `fn` receives runs its calls at once.
 *
 * States: open → closed (the connection throws `STORE_CLOSED` after).
 */
import type { RunState, WebhookResponse } from '../../protocol/index.ts';
import type { Logger } from 'pino';
import { SqliteConnection } from './sqlite-connection.ts';
import * as runs from './sqlite-runs.ts';
import * as claims from './sqlite-claims.ts';
import * as runEvents from './sqlite-run-events.ts';
import * as queues from './sqlite-queues.ts';
import * as listings from './sqlite-listings.ts';
import * as credentials from './sqlite-credentials.ts';
import * as workers from './sqlite-workers.ts';
import type {
  AttemptRecord, ClaimRequest, ClaimedRow, DataclipRecord, LaneAttempt, LeaseMode, LogRecord, NewLogLine, NewRun, NewStep, QueueStats,
  RunFilter, RunOutcomeFields, RunRecord, StepOutcome, StepRecord, Store, WorkerRecord,
} from './store.ts';

/** The transaction in progress on the one connection, shared by the store and its handles. */
interface Gate {
  current: Promise<void> | undefined;
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly #q: SqliteConnection;
  readonly #gate: Gate;
  /** True for the handle given to a transaction's callback. */
  readonly #inTransaction: boolean;

  private constructor(connection: SqliteConnection, gate: Gate, inTransaction: boolean) {
    this.#q = connection;
    this.#gate = gate;
    this.#inTransaction = inTransaction;
  }

  /** Opens (or creates) the file, or `:memory:`, and applies pending migrations. */
  static open(dbPath: string, logger: Logger): SqliteStore {
    return new SqliteStore(SqliteConnection.open(dbPath, logger), { current: undefined }, false);
  }

  get isOpen(): boolean {
    return this.#q.isOpen;
  }

  async close(): Promise<void> {
    this.#q.close();
  }

  async #call<T>(fn: () => T): Promise<T> {
    if (!this.#inTransaction) while (this.#gate.current !== undefined) await this.#gate.current;
    return fn();
  }

  async transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    if (this.#inTransaction) return fn(this);
    while (this.#gate.current !== undefined) await this.#gate.current;
    let release = (): void => undefined;
    this.#gate.current = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      return await this.#q.transactionAsync(() => fn(new SqliteStore(this.#q, this.#gate, true)));
    } finally {
      this.#gate.current = undefined;
      release();
    }
  }

  ping(): Promise<boolean> {
    return this.#q.isOpen ? this.#call(() => this.#q.ping()) : Promise.resolve(false);
  }

  insertRun(input: NewRun): Promise<RunRecord> { return this.#call(() => runs.insertRun(this.#q, input)); }
  getRun(id: string): Promise<RunRecord | undefined> { return this.#call(() => runs.getRun(this.#q, id)); }
  getRunByIdempotencyKey(key: string): Promise<RunRecord | undefined> { return this.#call(() => runs.getRunByIdempotencyKey(this.#q, key)); }
  listRuns(filter: RunFilter): Promise<RunRecord[]> { return this.#call(() => runs.listRuns(this.#q, filter)); }
  claim(request: ClaimRequest): Promise<ClaimedRow[]> { return this.#call(() => claims.claim(this.#q, request)); }
  setTokenHash(runId: string, attempt: number, tokenHash: string): Promise<void> { return this.#call(() => claims.setTokenHash(this.#q, runId, attempt, tokenHash)); }
  markStarted(runId: string, attempt: number, now: number, versions: Record<string, string> | null): Promise<boolean> {
    return this.#call(() => claims.markStarted(this.#q, runId, attempt, now, versions));
  }
  extendLease(runId: string, attempt: number, leaseExpiresAt: number, mode: LeaseMode | null): Promise<void> {
    return this.#call(() => claims.extendLease(this.#q, runId, attempt, leaseExpiresAt, mode));
  }
  finishRun(runId: string, attempt: number, fields: RunOutcomeFields, deadLetter: boolean): Promise<boolean> {
    return this.#call(() => claims.finishRun(this.#q, runId, attempt, fields, deadLetter));
  }
  requeue(runId: string, attempt: number, fields: RunOutcomeFields, availableAt: number): Promise<boolean> {
    return this.#call(() => claims.requeue(this.#q, runId, attempt, fields, availableAt));
  }
  renewHeartbeatLeases(leaseExpiresAt: number): Promise<number> { return this.#call(() => claims.renewHeartbeatLeases(this.#q, leaseExpiresAt)); }
  expiredLeases(now: number): Promise<RunRecord[]> { return this.#call(() => claims.expiredLeases(this.#q, now)); }
  getAttempts(runId: string): Promise<AttemptRecord[]> { return this.#call(() => listings.getAttempts(this.#q, runId)); }
  activeRunsByWorker(): Promise<Map<string, string[]>> { return this.#call(() => listings.activeRunsByWorker(this.#q)); }
  countsByQueueAndState(): Promise<Array<{ queue: string; state: RunState; count: number }>> { return this.#call(() => queues.countsByQueueAndState(this.#q)); }
  queueStats(): Promise<QueueStats[]> { return this.#call(() => queues.queueStats(this.#q)); }
  setQueueSuspended(name: string, suspended: boolean, now: number): Promise<void> { return this.#call(() => queues.setQueueSuspended(this.#q, name, suspended, now)); }
  isQueueSuspended(name: string): Promise<boolean> { return this.#call(() => queues.isQueueSuspended(this.#q, name)); }
  queuesWithAvailableRuns(now: number): Promise<string[]> { return this.#call(() => queues.queuesWithAvailableRuns(this.#q, now)); }
  pendingRetries(now: number): Promise<Array<{ id: string; queue: string; availableAt: number }>> { return this.#call(() => queues.pendingRetries(this.#q, now)); }
  deleteFinishedBefore(cutoff: number, batch: number): Promise<number> { return this.#call(() => runs.deleteFinishedBefore(this.#q, cutoff, batch)); }
  setWebhookResponseOnce(runId: string, response: WebhookResponse): Promise<void> { return this.#call(() => runs.setWebhookResponseOnce(this.#q, runId, response)); }
  insertDataclip(id: string, runId: string, type: string, body: string, now: number): Promise<void> {
    return this.#call(() => runEvents.insertDataclip(this.#q, id, runId, type, body, now));
  }
  getDataclip(id: string): Promise<DataclipRecord | undefined> { return this.#call(() => runEvents.getDataclip(this.#q, id)); }
  getStep(stepId: string): Promise<(StepRecord & { runId: string }) | undefined> { return this.#call(() => runEvents.getStep(this.#q, stepId)); }
  insertStep(step: NewStep): Promise<void> { return this.#call(() => runEvents.insertStep(this.#q, step)); }
  completeStep(step: StepOutcome): Promise<void> { return this.#call(() => runEvents.completeStep(this.#q, step)); }
  getSteps(runId: string): Promise<StepRecord[]> { return this.#call(() => runEvents.getSteps(this.#q, runId)); }
  insertLog(line: NewLogLine): Promise<string> { return this.#call(() => runEvents.insertLog(this.#q, line)); }
  getLogs(runId: string): Promise<LogRecord[]> { return this.#call(() => runEvents.getLogs(this.#q, runId)); }
  getEventReply(runId: string, key: string): Promise<unknown> { return this.#call(() => runEvents.getEventReply(this.#q, runId, key)); }
  putEventReply(runId: string, key: string, reply: unknown): Promise<void> { return this.#call(() => runEvents.putEventReply(this.#q, runId, key, reply)); }
  putCredential(id: string, bodyJson: string, now: number): Promise<void> { return this.#call(() => credentials.putCredential(this.#q, id, bodyJson, now)); }
  getCredential(id: string): Promise<unknown> { return this.#call(() => credentials.getCredential(this.#q, id)); }
  upsertWorker(worker: WorkerRecord): Promise<void> { return this.#call(() => workers.upsertWorker(this.#q, worker)); }
  touchWorker(id: string, name: string | null, now: number): Promise<void> { return this.#call(() => workers.touchWorker(this.#q, id, name, now)); }
  markWorkerDisconnected(id: string, now: number): Promise<void> { return this.#call(() => workers.markWorkerDisconnected(this.#q, id, now)); }
  putSettingOnce(name: string, value: string): Promise<string> { return this.#call(() => credentials.putSettingOnce(this.#q, name, value)); }
  recentAttempts(since: number, limit: number): Promise<LaneAttempt[]> { return this.#call(() => listings.recentAttempts(this.#q, since, limit)); }
  finishedSince(since: number): Promise<Map<string, number>> { return this.#call(() => listings.finishedSince(this.#q, since)); }
  retryDeadLetter(runId: string, now: number): Promise<boolean> { return this.#call(() => runs.retryDeadLetter(this.#q, runId, now)); }

  /** One server per SQLite file: no one else to tell. */
  async publish(_message: string): Promise<void> {}

  async subscribe(_handlers: { onMessage: (message: string) => void; onResync: () => void }): Promise<() => Promise<void>> {
    return async () => undefined;
  }
}
