/**
 * What the server needs from storage, behind one interface with two
 * implementations: SQLite (`sqlite-store.ts`, the embedded default) and
 * PostgreSQL (`postgres-store.ts`, several replicas on one database). The
 * store suite (test/server/store.test.ts) runs the same tests on both.
 *
 * Every method is async. Multi-row writes are atomic inside one store call;
 * `transaction(fn)` groups several calls: `fn` gets a handle that runs them
 * inside the transaction (use only that handle inside `fn`). Times are epoch
 * milliseconds. Every method after `close()` rejects with `STORE_CLOSED`.
 */
import type { RunPlan, RunState, WebhookResponse } from '../../protocol/index.ts';
import type { Submission } from '../run-submission.ts';

export type LeaseMode = 'timeout' | 'heartbeat';

/** One run as stored. */
export interface RunRecord {
  id: string;
  queue: string;
  priority: number;
  state: RunState;
  reason: string | null;
  errorType: string | null;
  errorMessage: string | null;
  attempts: number;
  maxAttempts: number;
  deadLetter: boolean;
  idempotencyKey: string | null;
  workerId: string | null;
  workerName: string | null;
  plan: RunPlan;
  dataclipId: string;
  runTimeoutMs: number;
  /** Insertion order: the keyset of `listRuns` pages. */
  seq: number;
  createdAt: number;
  enqueuedAt: number;
  availableAt: number;
  claimedAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  leaseExpiresAt: number | null;
  leaseMode: LeaseMode | null;
  tokenHash: string | null;
  finalDataclipId: string | null;
  finalState: unknown;
  webhookResponse: WebhookResponse | null;
  versions: Record<string, string> | null;
}

export interface AttemptRecord {
  attempt: number;
  workerId: string | null;
  workerName: string | null;
  claimedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  state: RunState;
  errorType: string | null;
  errorMessage: string | null;
}

export interface StepRecord {
  id: string;
  attempt: number;
  jobId: string;
  inputDataclipId: string | null;
  outputDataclipId: string | null;
  outputDataclipError: string | null;
  reason: string | null;
  errorType: string | null;
  errorMessage: string | null;
  mem: unknown;
  durationMs: number | null;
  threadId: number | null;
  startedAt: number;
  finishedAt: number | null;
}

export interface LogRecord {
  id: string;
  attempt: number;
  stepId: string | null;
  level: string;
  source: string;
  message: unknown[];
  timestamp: string;
}

/**
 * A run to store: what was submitted (the plan without `id` and
 * `dataclip_id`, which the store fills) plus what the server adds.
 */
export interface NewRun extends Omit<Submission, 'notBefore'> {
  id: string;
  runTimeoutMs: number;
  now: number;
  /** Not claimable before this time (epoch ms); null or absent: from `now`. */
  notBefore?: number | null;
}

/** What a claim hands out, before tokens are signed. */
export interface ClaimedRow {
  id: string;
  queue: string;
  attempt: number;
  runTimeoutMs: number;
  enqueuedAt: number;
  /** With a memory claim: the need counted for this run (its plan's run_memory_limit_mb, else the claim's default), in MB. */
  memoryMb?: number;
}

/** The memory part of a claim (protocol `memory_claims`), in MB. */
export interface ClaimMemoryFilter {
  /** Free in the lane now: the runs handed out fit in it together. */
  freeMb: number;
  /** The lane's whole memory: runs needing more are skipped, they never fit this lane. */
  laneMb: number;
  /** The need of a run whose plan declares none. */
  defaultRunMb: number;
}

export interface ClaimRequest {
  chain: readonly string[];
  demand: number;
  workerId: string;
  workerName: string | null;
  now: number;
  /** Lease for the non-heartbeat rule: claim time + run timeout + grace. */
  graceMs: number;
  /** For a worker that heartbeats: the run is leased for this long from the claim, in heartbeat mode. */
  heartbeatLeaseMs: number | null;
  /** Only runs whose memory need fits (`claim-memory.ts`); absent: memory is not considered. */
  memory?: ClaimMemoryFilter;
  /**
   * The run just stored in this transaction (a hand-off, run-hand-off.ts). A
   * store may claim it without walking the claim order when it is the only
   * run available: it is then first in any order. Same result either way.
   */
  justStored?: string;
}

export interface RunFilter {
  queue?: string;
  state?: RunState;
  deadLetter?: boolean;
  /** Keyset cursor: only runs inserted before the run with this `seq` (the previous page's last). */
  beforeSeq?: number;
  limit: number;
}

export interface QueueStats {
  name: string;
  suspended: boolean;
  counts: Partial<Record<RunState, number>>;
  oldestAvailableAt: number | null;
}

export interface WorkerRecord {
  id: string;
  name: string | null;
  capacity: number;
  queues: Record<string, number>;
  connectedAt: number;
  lastSeenAt: number;
}

/** One attempt as the dashboard draws it: on its worker's lane, from claim to end. */
export interface LaneAttempt {
  runId: string;
  attempt: number;
  workerId: string | null;
  /** The chain of the lane that claimed it (`manual>*`); null for attempts claimed before lanes were recorded. */
  lane: string | null;
  queue: string;
  state: RunState;
  /** The job of the step running now, while in flight. */
  step: string | null;
  /** What a memory claim counted for it (MB); null when memory did not bound the claim. */
  memoryMb: number | null;
  claimedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

/** Fields written when a run reaches a terminal state. */
export interface RunOutcomeFields {
  state: RunState;
  reason: string | null;
  errorType: string | null;
  errorMessage: string | null;
  finalDataclipId?: string | null;
  finalState?: unknown;
  now: number;
}

/** A step as written by `step:start`. */
export interface NewStep {
  id: string;
  runId: string;
  attempt: number;
  jobId: string;
  inputDataclipId: string | null;
  startedAt: number;
}

/** A step's end as written by `step:complete`. */
export interface StepOutcome {
  id: string;
  outputDataclipId: string | null;
  outputDataclipError: string | null;
  reason: string;
  errorType: string | null;
  errorMessage: string | null;
  mem: unknown;
  durationMs: number | null;
  threadId: number | null;
  finishedAt: number;
}

/** A log line as written by `run:log`: a `LogRecord` of a run, before the store gives it an id. */
export type NewLogLine = Omit<LogRecord, 'id'> & { runId: string };

export interface DataclipRecord {
  id: string;
  runId: string | null;
  body: string;
}

/** Which store a `--db` value names. */
export type StoreKind = 'sqlite' | 'postgres';

export interface Store {
  readonly kind: StoreKind;
  readonly isOpen: boolean;
  close(): Promise<void>;
  /** Runs `fn` in one transaction; `fn` must use the handle it gets. Nested calls join the outer one. */
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T>;
  /** A trivial query, for `/readyz`. */
  ping(): Promise<boolean>;

  /** Stores a new run and its input dataclip. */
  insertRun(input: NewRun): Promise<RunRecord>;
  getRun(id: string): Promise<RunRecord | undefined>;
  getRunByIdempotencyKey(key: string): Promise<RunRecord | undefined>;
  /** Newest first, at most `limit`, after the keyset cursor `beforeSeq`. */
  listRuns(filter: RunFilter): Promise<RunRecord[]>;
  /**
   * Claims up to `demand` runs for one lane, atomically (and, on PostgreSQL,
   * without two replicas ever handing out one run). Named queues first in
   * chain order, then (with `*`) every other queue; within that, higher
   * priority first, then oldest enqueue. Suspended queues and runs not yet
   * available (retry backoff, `not_before`) are skipped.
   */
  claim(request: ClaimRequest): Promise<ClaimedRow[]>;
  /** Binds the signed token to the attempt, so only its holder can join the run channel. */
  setTokenHash(runId: string, attempt: number, tokenHash: string): Promise<void>;
  /** `claimed → started`. False when the run was not claimed by this attempt. */
  markStarted(runId: string, attempt: number, now: number, versions: Record<string, string> | null): Promise<boolean>;
  /** Extends the lease of an in-flight attempt; the first heartbeat switches it to heartbeat leasing. */
  extendLease(runId: string, attempt: number, leaseExpiresAt: number, mode: LeaseMode | null): Promise<void>;
  /** Writes a terminal state for the current attempt if it is still in flight (or still available, for cancels). */
  finishRun(runId: string, attempt: number, fields: RunOutcomeFields, deadLetter: boolean): Promise<boolean>;
  /** Puts an in-flight attempt that ended badly back in its queue, available again at `availableAt`. */
  requeue(runId: string, attempt: number, fields: RunOutcomeFields, availableAt: number): Promise<boolean>;
  /** After a restart: every heartbeat lease runs at least until `leaseExpiresAt`. Returns how many moved. */
  renewHeartbeatLeases(leaseExpiresAt: number): Promise<number>;
  /** In-flight runs whose lease lapsed at `now`. */
  expiredLeases(now: number): Promise<RunRecord[]>;
  getAttempts(runId: string): Promise<AttemptRecord[]>;
  /** Runs per worker that are claimed or started, for `GET /api/workers`. */
  activeRunsByWorker(): Promise<Map<string, string[]>>;
  /** Counts of runs by queue and state, for `/metrics`. */
  countsByQueueAndState(): Promise<Array<{ queue: string; state: RunState; count: number }>>;
  /** Queues that hold runs or were suspended, with counts and the oldest available run. */
  queueStats(): Promise<QueueStats[]>;
  setQueueSuspended(name: string, suspended: boolean, now: number): Promise<void>;
  isQueueSuspended(name: string): Promise<boolean>;
  /** Queues holding runs that are available now. */
  queuesWithAvailableRuns(now: number): Promise<string[]>;
  /** Available runs not claimable yet (retry backoff, `not_before`): when each becomes claimable. */
  pendingRetries(now: number): Promise<Array<{ id: string; queue: string; availableAt: number }>>;
  /**
   * Retention: deletes up to `batch` runs that finished before `cutoff`, with
   * their attempts, steps, logs, event replies and dataclips. Returns how
   * many runs it deleted; call again until it returns less than `batch`.
   */
  deleteFinishedBefore(cutoff: number, batch: number): Promise<number>;

  /** Keeps the first `webhook_response` a run produced; later ones are ignored. */
  setWebhookResponseOnce(runId: string, response: WebhookResponse): Promise<void>;
  insertDataclip(id: string, runId: string, type: string, body: string, now: number): Promise<void>;
  getDataclip(id: string): Promise<DataclipRecord | undefined>;
  getStep(stepId: string): Promise<(StepRecord & { runId: string }) | undefined>;
  insertStep(step: NewStep): Promise<void>;
  completeStep(step: StepOutcome): Promise<void>;
  getSteps(runId: string): Promise<StepRecord[]>;
  /** Returns the new line's id. */
  insertLog(line: NewLogLine): Promise<string>;
  getLogs(runId: string): Promise<LogRecord[]>;
  getEventReply(runId: string, key: string): Promise<unknown>;
  putEventReply(runId: string, key: string, reply: unknown): Promise<void>;
  putCredential(id: string, bodyJson: string, now: number): Promise<void>;
  getCredential(id: string): Promise<unknown>;
  upsertWorker(worker: WorkerRecord): Promise<void>;
  touchWorker(id: string, name: string | null, now: number): Promise<void>;
  markWorkerDisconnected(id: string, now: number): Promise<void>;
  /** Stores `value` under `name` unless a value is there already; returns the stored value (the first writer's). */
  putSettingOnce(name: string, value: string): Promise<string>;

  // The dashboard's reads (docs/dashboard.md); the claim records each attempt's lane (run_attempts.lane).
  /**
   * Attempts in flight, and the newest `limit` ended attempts claimed since
   * `since`, each with its run's queue, the lane that claimed it and, while in
   * flight, the job of its open step. Oldest claim first.
   */
  recentAttempts(since: number, limit: number): Promise<LaneAttempt[]>;
  /** Attempts that ended since `since`, by queue. */
  finishedSince(since: number): Promise<Map<string, number>>;
  /** Puts a dead letter back in its queue with one more attempt allowed; false when it is not a dead letter. */
  retryDeadLetter(runId: string, now: number): Promise<boolean>;
  /**
   * Tells every server on this database (PostgreSQL: NOTIFY, delivered at
   * the commit when called on a transaction's handle). SQLite has one server:
   * nothing to tell.
   */
  publish(message: string): Promise<void>;
  /**
   * Calls `onMessage` with every message published on this database (its own
   * included) until the returned function is called. A listener that lost
   * its connection reconnects and then calls `onResync`: messages sent
   * meanwhile are lost, so the caller re-reads what it waits for. SQLite
   * never calls either.
   */
  subscribe(handlers: { onMessage: (message: string) => void; onResync: () => void }): Promise<() => Promise<void>>;
}
