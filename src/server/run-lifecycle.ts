/**
 * The one place where a run's outcome is decided: terminal, or back in its
 * queue for another attempt (lost and crashed runs, while
 * `attempts < max_attempts`, after an exponential backoff), or a dead letter
 * once attempts are exhausted. It also wakes workers when runs become
 * claimable and answers `?wait` requests when a run ends for good. With
 * several servers on one PostgreSQL database it also tells the others
 * (replica-events.ts) and acts on what they tell it.
 *
 * States, kept in a `StateMachine`: running → stopped. The `?wait` waiters
 * and the timers of runs waiting out a retry backoff belong to `running`:
 * `stop()` clears the timers and releases the waiters with `undefined`.
 */
import type { Logger } from 'pino';
import type { RunState } from '../protocol/index.ts';
import { StateMachine } from '../state-machine.ts';
import { isTerminalState } from '../protocol/index.ts';
import type { RunOutcomeFields, RunRecord, Store } from './store/store.ts';
import type { WorkNotifier } from './work-notifier.ts';
import type { HandOff } from './held-claims.ts';
import type { HandOffContext } from './run-hand-off.ts';
import type { RunCancelListener } from './cancel-notifier.ts';
import type { ReplicaEvent, ReplicaEvents } from './replica-events.ts';
import type { ServerMetrics } from './server-metrics.ts';
import { retryDelayMs } from './server-options.ts';
import type { ResolvedServerOptions } from './server-options.ts';

/** Outcomes that a new attempt may fix. `failed`, `killed`, `exception` and `cancelled` are the job's or the operator's verdict. */
export const RETRYABLE_STATES: ReadonlySet<RunState> = new Set<RunState>(['lost', 'crashed']);

/** How an attempt ended: the store's terminal fields, stamped with the time by `finish`. */
export type RunOutcome = Omit<RunOutcomeFields, 'now'>;

export type FinishResult = 'finished' | 'requeued' | 'stale';

type Waiter = (run: RunRecord | undefined) => void;

/** `waiters`: the `?wait` requests by run id; `retryTimers`: the wake-ups at the end of retry backoffs. */
type LifecycleState =
  | { readonly kind: 'running'; readonly waiters: Map<string, Set<Waiter>>; readonly retryTimers: Set<NodeJS.Timeout> }
  | { readonly kind: 'stopped' };

export class RunLifecycle {
  readonly #store: Store;
  readonly #notifier: WorkNotifier;
  readonly #cancels: RunCancelListener | undefined;
  readonly #events: ReplicaEvents | undefined;
  readonly #metrics: ServerMetrics;
  readonly #options: ResolvedServerOptions;
  readonly #logger: Logger;
  readonly #state: StateMachine<LifecycleState>;

  constructor(options: {
    store: Store;
    notifier: WorkNotifier;
    cancels?: RunCancelListener;
    events?: ReplicaEvents;
    metrics: ServerMetrics;
    options: ResolvedServerOptions;
    logger: Logger;
  }) {
    this.#store = options.store;
    this.#notifier = options.notifier;
    this.#cancels = options.cancels;
    this.#events = options.events;
    this.#metrics = options.metrics;
    this.#options = options.options;
    this.#logger = options.logger;
    this.#state = new StateMachine<LifecycleState>({
      name: 'run lifecycle',
      initial: { kind: 'running', waiters: new Map(), retryTimers: new Set() },
      transitions: { running: ['stopped'], stopped: [] },
      logger: options.logger,
    });
  }

  /** After a restart: wake workers for runs waiting out a backoff when it ends. */
  async resumePendingRetries(now: number): Promise<void> {
    for (const pending of await this.#store.pendingRetries(now)) this.#notifyAt(pending.queue, pending.availableAt - now);
  }

  /** Listens to the other servers on the database (PostgreSQL); a no-op on SQLite. */
  async listen(): Promise<void> {
    await this.#events?.start({
      onEvent: (event) => this.#onReplicaEvent(event),
      onResync: () => void this.#resync(),
    });
  }

  /** A run is about to be stored: tell the workers connected here at once (the others hear of it once it is stored). */
  announce(queue: string): void {
    if (this.#state.kind === 'running') this.#notifier.notify(queue, false);
  }

  /** A run being stored in `context`'s transaction is offered to the claims held here (run-hand-off.ts). */
  handOff(context: HandOffContext): Promise<HandOff | undefined> {
    return this.#state.kind === 'running' ? this.#notifier.handOff(context.record.queue, context) : Promise.resolve(undefined);
  }

  /**
   * A run was queued (submitted, resumed): tell the workers that could take
   * it, here and on the other servers, now or when it becomes available.
   * `toldHere`: `announce` already woke the workers connected here.
   */
  enqueued(queue: string, availableAt = Date.now(), toldHere = false): void {
    const delayMs = availableAt - Date.now();
    if (delayMs <= 0 && toldHere) {
      // Announced before it was stored: the claims held here could not see it then.
      if (this.#state.kind === 'running') this.#notifier.stored(queue);
      this.#events?.publish({ kind: 'work', queue });
      return;
    }
    this.#notifyAt(queue, delayMs);
  }

  /**
   * Ends attempt `run.attempts` with `outcome`. Returns `stale` when the
   * attempt had already ended (a late or duplicate report): nothing is written.
   * Inside a transaction, pass its handle as `store`.
   */
  async finish(run: RunRecord, outcome: RunOutcome, now = Date.now(), store: Store = this.#store): Promise<FinishResult> {
    const fields = { ...outcome, now };
    const retryable = RETRYABLE_STATES.has(outcome.state);
    if (retryable && run.attempts < run.maxAttempts && run.attempts > 0) {
      const delay = retryDelayMs(this.#options, run.attempts);
      if (!(await store.requeue(run.id, run.attempts, fields, now + delay))) return 'stale';
      this.#metrics.runsRetried.inc(this.#metrics.queueLabel(run.queue));
      this.#logger.info({ runId: run.id, attempt: run.attempts, state: outcome.state, retryInMs: delay }, 'run requeued for retry');
      this.#notifyAt(run.queue, delay);
      return 'requeued';
    }
    if (!(await store.finishRun(run.id, run.attempts, fields, retryable))) return 'stale';
    this.#logger.info({ runId: run.id, state: outcome.state, deadLetter: retryable }, 'run finished');
    // A cancel of a run a worker holds: that worker is told at once (run_cancel), not at its next event.
    if (outcome.state === 'cancelled' && run.workerId !== null && (run.state === 'claimed' || run.state === 'started')) {
      this.#cancels?.runCancelled(run.id, run.workerId);
      this.#events?.publish({ kind: 'cancel', runId: run.id, workerId: run.workerId }, store);
    }
    this.#events?.publish({ kind: 'ended', runId: run.id }, store);
    await this.#release(run.id, store);
    return 'finished';
  }

  /**
   * The socket that carried attempt `attempt` of a run closed. A heartbeating run's lease drops to
   * the reconnect grace: a worker that reconnects rejoins and beats within it, and a dead worker's
   * run is lost within seconds instead of a whole lease. Runs leased by their timeout (a worker that
   * does not heartbeat could not renew a shorter lease) are left alone, as are shorter leases.
   */
  async workerGone(runId: string, attempt: number, now = Date.now()): Promise<void> {
    if (this.#state.kind !== 'running' || !this.#store.isOpen) return;
    try {
      const run = await this.#store.getRun(runId);
      if (run === undefined || run.attempts !== attempt || (run.state !== 'claimed' && run.state !== 'started')) return;
      if (run.leaseMode !== 'heartbeat' || run.leaseExpiresAt === null) return;
      const graceEnds = now + this.#options.reconnectGraceMs;
      if (run.leaseExpiresAt <= graceEnds) return;
      // A rejoin comes after the worker's reconnect backoff (250 ms at least), well after this write.
      await this.#store.extendLease(runId, attempt, graceEnds, null);
      this.#logger.info({ runId, attempt, graceMs: this.#options.reconnectGraceMs }, 'worker socket closed; lease cut to the reconnect grace');
    } catch (error) {
      // The whole lease still applies: the run is lost later, never dropped.
      this.#logger.warn({ runId, err: error }, 'could not cut the lease of a closed worker');
    }
  }

  /** The run's worker joined its channel (again): a heartbeating attempt gets a whole lease from now. */
  async workerBack(runId: string, attempt: number, now = Date.now()): Promise<void> {
    if (this.#state.kind !== 'running' || !this.#store.isOpen) return;
    await this.#store.extendLease(runId, attempt, now + this.#options.leaseMs, null);
  }

  /** Resolves with the run once it ends for good, or `undefined` after `timeoutMs` or at shutdown. */
  async waitForEnd(runId: string, timeoutMs: number): Promise<RunRecord | undefined> {
    const current = await this.#store.getRun(runId);
    if (!current || this.#isFinal(current)) return current;
    const running = this.#state.when('running');
    if (running === undefined) return undefined;
    return new Promise((resolve) => {
      const waiters = running.waiters.get(runId) ?? new Set<Waiter>();
      running.waiters.set(runId, waiters);
      const timer = setTimeout(() => done(undefined), timeoutMs);
      const done: Waiter = (run) => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0 && running.waiters.get(runId) === waiters) running.waiters.delete(runId);
        resolve(run);
      };
      waiters.add(done);
    });
  }

  stop(): void {
    const running = this.#state.when('running');
    if (running === undefined) return;
    this.#state.to({ kind: 'stopped' });
    for (const timer of running.retryTimers) clearTimeout(timer);
    running.retryTimers.clear();
    for (const waiters of running.waiters.values()) for (const waiter of [...waiters]) waiter(undefined);
    running.waiters.clear();
  }

  #isFinal(run: RunRecord): boolean {
    return isTerminalState(run.state);
  }

  async #release(runId: string, store: Store): Promise<void> {
    const waiters = this.#state.when('running')?.waiters.get(runId);
    if (!waiters) return;
    const run = await store.getRun(runId);
    // From another server (or a resync) the run may not have ended: keep waiting.
    if (run && !this.#isFinal(run)) return;
    for (const waiter of [...waiters]) waiter(run);
  }

  #onReplicaEvent(event: ReplicaEvent): void {
    const running = this.#state.when('running');
    if (running === undefined) return;
    if (event.kind === 'work') this.#notifier.notify(event.queue);
    else if (event.kind === 'cancel') this.#cancels?.runCancelled(event.runId, event.workerId);
    else if (running.waiters.has(event.runId)) {
      this.#release(event.runId, this.#store).catch((error: unknown) => this.#logger.warn({ err: error, runId: event.runId }, 'wait release failed'));
    }
  }

  /** After missed replica events: answer waits whose run ended, wake workers for every queue with claimable runs. */
  async #resync(): Promise<void> {
    try {
      for (const runId of [...(this.#state.when('running')?.waiters.keys() ?? [])]) await this.#release(runId, this.#store);
      for (const queue of await this.#store.queuesWithAvailableRuns(Date.now())) this.#notifier.notify(queue);
    } catch (error) {
      this.#logger.warn({ err: error }, 'replica resync failed');
    }
  }

  /** Wakes the workers here and on the other servers. */
  #wake(queue: string): void {
    this.#notifier.notify(queue);
    this.#events?.publish({ kind: 'work', queue });
  }

  #notifyAt(queue: string, delayMs: number): void {
    const running = this.#state.when('running');
    if (running === undefined) return;
    if (delayMs <= 0) {
      this.#wake(queue);
      return;
    }
    const timer = setTimeout(() => {
      running.retryTimers.delete(timer);
      if (this.#state.kind === 'running') this.#wake(queue);
    }, delayMs);
    timer.unref();
    running.retryTimers.add(timer);
  }
}
