/**
 * The embedded store: the async `Store` interface in front of the
 * synchronous SQLite queries (`sqlite-queries.ts`, one `node:sqlite`
 * connection).
 *
 * One connection means one transaction at a time, and `transaction(fn)`
 * awaits `fn`: while it runs, any call made outside the transaction waits
 * for it to end instead of slipping into it (and being rolled back with it).
 * The handle `fn` receives runs its calls at once.
 *
 * States: open → closed (the queries object throws `STORE_CLOSED` after).
 */
import type { RunState, WebhookResponse } from '../../protocol/index.ts';
import { SqliteQueries } from './sqlite-queries.ts';
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
  readonly #q: SqliteQueries;
  readonly #gate: Gate;
  /** True for the handle given to a transaction's callback. */
  readonly #inTransaction: boolean;

  private constructor(queries: SqliteQueries, gate: Gate, inTransaction: boolean) {
    this.#q = queries;
    this.#gate = gate;
    this.#inTransaction = inTransaction;
  }

  /** Opens (or creates) the file, or `:memory:`, and applies pending migrations. */
  static open(dbPath: string): SqliteStore {
    return new SqliteStore(SqliteQueries.open(dbPath), { current: undefined }, false);
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

  insertRun(input: NewRun): Promise<RunRecord> { return this.#call(() => this.#q.insertRun(input)); }
  getRun(id: string): Promise<RunRecord | undefined> { return this.#call(() => this.#q.getRun(id)); }
  getRunByIdempotencyKey(key: string): Promise<RunRecord | undefined> { return this.#call(() => this.#q.getRunByIdempotencyKey(key)); }
  listRuns(filter: RunFilter): Promise<RunRecord[]> { return this.#call(() => this.#q.listRuns(filter)); }
  claim(request: ClaimRequest): Promise<ClaimedRow[]> { return this.#call(() => this.#q.claim(request)); }
  setTokenHash(runId: string, attempt: number, tokenHash: string): Promise<void> { return this.#call(() => this.#q.setTokenHash(runId, attempt, tokenHash)); }
  markStarted(runId: string, attempt: number, now: number, versions: Record<string, string> | null): Promise<boolean> {
    return this.#call(() => this.#q.markStarted(runId, attempt, now, versions));
  }
  extendLease(runId: string, attempt: number, leaseExpiresAt: number, mode: LeaseMode | null): Promise<void> {
    return this.#call(() => this.#q.extendLease(runId, attempt, leaseExpiresAt, mode));
  }
  finishRun(runId: string, attempt: number, fields: RunOutcomeFields, deadLetter: boolean): Promise<boolean> {
    return this.#call(() => this.#q.finishRun(runId, attempt, fields, deadLetter));
  }
  requeue(runId: string, attempt: number, fields: RunOutcomeFields, availableAt: number): Promise<boolean> {
    return this.#call(() => this.#q.requeue(runId, attempt, fields, availableAt));
  }
  renewHeartbeatLeases(leaseExpiresAt: number): Promise<number> { return this.#call(() => this.#q.renewHeartbeatLeases(leaseExpiresAt)); }
  expiredLeases(now: number): Promise<RunRecord[]> { return this.#call(() => this.#q.expiredLeases(now)); }
  getAttempts(runId: string): Promise<AttemptRecord[]> { return this.#call(() => this.#q.getAttempts(runId)); }
  activeRunsByWorker(): Promise<Map<string, string[]>> { return this.#call(() => this.#q.activeRunsByWorker()); }
  countsByQueueAndState(): Promise<Array<{ queue: string; state: RunState; count: number }>> { return this.#call(() => this.#q.countsByQueueAndState()); }
  queueStats(): Promise<QueueStats[]> { return this.#call(() => this.#q.queueStats()); }
  setQueueSuspended(name: string, suspended: boolean, now: number): Promise<void> { return this.#call(() => this.#q.setQueueSuspended(name, suspended, now)); }
  isQueueSuspended(name: string): Promise<boolean> { return this.#call(() => this.#q.isQueueSuspended(name)); }
  queuesWithAvailableRuns(now: number): Promise<string[]> { return this.#call(() => this.#q.queuesWithAvailableRuns(now)); }
  pendingRetries(now: number): Promise<Array<{ id: string; queue: string; availableAt: number }>> { return this.#call(() => this.#q.pendingRetries(now)); }
  deleteFinishedBefore(cutoff: number, batch: number): Promise<number> { return this.#call(() => this.#q.deleteFinishedBefore(cutoff, batch)); }
  setWebhookResponseOnce(runId: string, response: WebhookResponse): Promise<void> { return this.#call(() => this.#q.setWebhookResponseOnce(runId, response)); }
  insertDataclip(id: string, runId: string, type: string, body: string, now: number): Promise<void> {
    return this.#call(() => this.#q.insertDataclip(id, runId, type, body, now));
  }
  getDataclip(id: string): Promise<DataclipRecord | undefined> { return this.#call(() => this.#q.getDataclip(id)); }
  getStep(stepId: string): Promise<(StepRecord & { runId: string }) | undefined> { return this.#call(() => this.#q.getStep(stepId)); }
  insertStep(step: NewStep): Promise<void> { return this.#call(() => this.#q.insertStep(step)); }
  completeStep(step: StepOutcome): Promise<void> { return this.#call(() => this.#q.completeStep(step)); }
  getSteps(runId: string): Promise<StepRecord[]> { return this.#call(() => this.#q.getSteps(runId)); }
  insertLog(line: NewLogLine): Promise<string> { return this.#call(() => this.#q.insertLog(line)); }
  getLogs(runId: string): Promise<LogRecord[]> { return this.#call(() => this.#q.getLogs(runId)); }
  getEventReply(runId: string, key: string): Promise<unknown> { return this.#call(() => this.#q.getEventReply(runId, key)); }
  putEventReply(runId: string, key: string, reply: unknown): Promise<void> { return this.#call(() => this.#q.putEventReply(runId, key, reply)); }
  putCredential(id: string, bodyJson: string, now: number): Promise<void> { return this.#call(() => this.#q.putCredential(id, bodyJson, now)); }
  getCredential(id: string): Promise<unknown> { return this.#call(() => this.#q.getCredential(id)); }
  upsertWorker(worker: WorkerRecord): Promise<void> { return this.#call(() => this.#q.upsertWorker(worker)); }
  touchWorker(id: string, name: string | null, now: number): Promise<void> { return this.#call(() => this.#q.touchWorker(id, name, now)); }
  markWorkerDisconnected(id: string, now: number): Promise<void> { return this.#call(() => this.#q.markWorkerDisconnected(id, now)); }
  putSettingOnce(name: string, value: string): Promise<string> { return this.#call(() => this.#q.putSettingOnce(name, value)); }
  recentAttempts(since: number, limit: number): Promise<LaneAttempt[]> { return this.#call(() => this.#q.recentAttempts(since, limit)); }
  finishedSince(since: number): Promise<Map<string, number>> { return this.#call(() => this.#q.finishedSince(since)); }
  retryDeadLetter(runId: string, now: number): Promise<boolean> { return this.#call(() => this.#q.retryDeadLetter(runId, now)); }

  /** One server per SQLite file: no one else to tell. */
  async publish(_message: string): Promise<void> {}

  async subscribe(_handlers: { onMessage: (message: string) => void; onResync: () => void }): Promise<() => Promise<void>> {
    return async () => undefined;
  }
}
