/**
 * One lane's claim loop (DESIGN.md, "lane"). A Workloop owns its capacity,
 * its active runs, the slots promised to the claim in flight and a backlog of
 * runs a misbehaving server handed over beyond the demand. It knows nothing of
 * phoenix or child processes: it takes a `Claimer` and a `RunStarter`
 * (`claimer.ts`); the runs it holds live in `LaneRuns` (`lane-runs.ts`).
 *
 * States and transitions (each change is logged at debug; any other throws):
 *
 *   idle      created, not started                      → claiming | full | stopped
 *   claiming  one claim is in flight                    → claiming | waiting | full | stopping
 *   waiting   backing off after an empty/failed claim,  → claiming | full | stopping
 *             or for the minimum backoff after a short
 *             one (fewer runs than the demand: the
 *             queues are drained); work-available or
 *             one of this lane's finished runs cuts the
 *             wait short
 *   full      no free slot: no claim until one of this  → claiming | stopping
 *             lane's runs finishes
 *   stopping  stop() was called: no new claim; the      → stopped
 *             claim in flight is awaited and its runs
 *             started (a claimed run is never dropped)
 *   stopped   the loop is over; runs may still be active (the worker drains them)
 *
 * Invariant: active + promised + backlog ≤ capacity is what `demand` enforces,
 * and active ≤ capacity holds whatever the server replies: there is at most
 * one claim in flight per lane, and its demand is the free slots counted
 * before it was sent. With a `LaneMemory`, the same holds for memory: a claim
 * is sent only while the lane has free memory too (state `full` otherwise),
 * and a run starts only when its reservation fits beside the runs held.
 */
import pRetry from 'p-retry';
import type { RetryContext } from 'p-retry';
import type { Logger } from 'pino';
import { LanesError } from '../errors/lanes-error.ts';
import type { ClaimedRun } from '../protocol/messages.ts';
import { BackoffWake, interruptibleDelay, STOPPED, WOKEN } from './backoff-wake.ts';
import { ClaimError, EmptyClaimError } from './claim-errors.ts';
import type { ClaimRequest, ClaimSettled, Claimer, RunStarter } from './claimer.ts';
import type { LaneMemory } from './lane-memory.ts';
import { LaneRuns } from './lane-runs.ts';
import type { LaneSpec } from './parse-workloops.ts';
import { WORKLOOP_TRANSITIONS, WorkloopStateError } from './workloop-state.ts';
import type { WorkloopState } from './workloop-state.ts';

export interface WorkloopOptions {
  spec: Readonly<LaneSpec>;
  claimer: Claimer;
  startRun: RunStarter;
  /** Backoff between empty or failed claims; doubles with jitter from min up to max. */
  backoff: Readonly<{ minMs: number; maxMs: number }>;
  logger: Logger;
  /** Called after every claim; must not throw (a throw is logged and ignored). */
  onClaimSettled?: (event: ClaimSettled) => void;
  /** The lane's memory share; without it only slots bound the lane. */
  memory?: LaneMemory;
  /** Whether the server takes memory claims now (asked before each claim: it changes on reconnect). */
  memoryClaims?: () => boolean;
  /**
   * A run went to the backlog (the server gave more than the demand): it
   * starts when a slot frees. The worker keeps its lease alive meanwhile.
   * Must not throw (a throw is logged and ignored).
   */
  onBacklogged?: (run: ClaimedRun) => void;
}

export class Workloop {
  readonly spec: Readonly<LaneSpec>;
  readonly #claimer: Claimer;
  readonly #backoff: Readonly<{ minMs: number; maxMs: number }>;
  readonly #logger: Logger;
  readonly #onClaimSettled: ((event: ClaimSettled) => void) | undefined;
  readonly #memory: LaneMemory | undefined;
  readonly #memoryClaims: () => boolean;

  #state: WorkloopState = 'idle';
  readonly #runs: LaneRuns;
  #promised = 0;
  /** Aborted by stop(): ends the loop and any backoff wait. */
  readonly #stopController = new AbortController();
  /** Aborted only by a forced stop: the claim in flight is given up. */
  readonly #claimController = new AbortController();
  /** Firing it cuts the current backoff wait short. */
  #wake: BackoffWake | null = null;
  /**
   * A claim sent straight from a wake: the backoff it cut short is still
   * unwinding (p-retry's rejection, the next cycle), and that takes a few
   * dozen microseconds of promise hops on a cold path that sending the claim
   * does not have to wait for. The next cycle takes it as its first attempt.
   */
  #early: Promise<void> | null = null;
  /** Resolves the wait of a full lane. */
  #slotWaiter: (() => void) | null = null;
  /** Work arrived while a claim was in flight: claim again even if that claim comes back empty. */
  #wakeRequested = false;
  /**
   * The last claim brought fewer runs than its demand, so this lane's queues
   * were empty when the server answered it: the next claim waits for the
   * minimum backoff or a wake, instead of asking the server straight away
   * while it is busy serving the runs just claimed (joins, plans, inputs).
   */
  #drained = false;
  #loop: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;

  constructor(options: WorkloopOptions) {
    this.spec = options.spec;
    this.#claimer = options.claimer;
    this.#backoff = options.backoff;
    this.#logger = options.logger;
    this.#onClaimSettled = options.onClaimSettled;
    this.#memory = options.memory;
    this.#memoryClaims = options.memoryClaims ?? (() => false);
    this.#runs = new LaneRuns({
      spec: options.spec,
      startRun: options.startRun,
      logger: options.logger,
      memory: options.memory,
      onBacklogged: options.onBacklogged,
      onSlotFree: () => {
        if (!this.#stopController.signal.aborted) this.#nudge();
      },
    });
  }

  /** The lane's memory share, when it has one. */
  get memory(): LaneMemory | undefined {
    return this.#memory;
  }

  get id(): string {
    return this.spec.id;
  }

  get state(): WorkloopState {
    return this.#state;
  }

  get capacity(): number {
    return this.spec.capacity;
  }

  /** Runs executing now. Never more than `capacity`. */
  get activeCount(): number {
    return this.#runs.activeCount;
  }

  get activeRunIds(): string[] {
    return this.#runs.activeRunIds;
  }

  /** Slots promised to the claim in flight. */
  get promisedCount(): number {
    return this.#promised;
  }

  /** Runs the server handed over beyond the demand, waiting for a slot. */
  get backlogCount(): number {
    return this.#runs.backlogCount;
  }

  /** Slots a claim may ask for now. */
  get freeSlots(): number {
    return Math.max(0, this.spec.capacity - this.#runs.activeCount - this.#promised - this.#runs.backlogCount);
  }

  /** Runs a claim may ask for now: the free slots, fewer when the lane's free memory cannot hold them. */
  get demand(): number {
    const slots = this.freeSlots;
    const memory = this.#memory;
    if (memory === undefined || !memory.bounded) return slots;
    return memory.demand(slots, this.#memoryClaims());
  }

  /** Starts the claim loop. Idempotent; a stopped lane does not start again. */
  start(): void {
    if (this.#loop !== null || this.#state !== 'idle') return;
    this.#loop = this.#run().catch((error: unknown) => {
      // The loop catches everything it expects; reaching here is a bug, and the lane must say so.
      this.#logger.error({ err: error }, 'lane loop crashed');
    });
  }

  /**
   * New work may be waiting: claim now if a slot is free. Any number of calls
   * make at most one extra claim, and never one beyond the free slots.
   */
  workAvailable(): void {
    // Slots promised to the claim in flight still count as free here: that claim
    // may come back short, and #claimOnce recomputes the demand before any claim.
    if (this.spec.capacity - this.#runs.activeCount - this.#runs.backlogCount <= 0) return;
    // Memory promised to the claim in flight is not free here either way: that claim will nudge when it settles.
    if (this.#memory?.bounded === true && this.#memory.freeMb <= 0 && this.#state !== 'claiming') return;
    this.#nudge();
  }

  /**
   * Stops claiming. The claim in flight is awaited (unless `force`, which aborts
   * it) and its runs started; the returned promise is the one already in flight
   * on a second call. Active runs are not touched: see `whenIdle()`.
   */
  stop(options: { force?: boolean } = {}): Promise<void> {
    if (options.force === true) this.#claimController.abort(new LanesError('LANE_STOPPED', 'lane stopped'));
    if (this.#stopping !== null) return this.#stopping;
    if (this.#state === 'idle' && this.#loop === null) {
      this.#setState('stopped');
      this.#stopController.abort();
      this.#stopping = Promise.resolve();
      return this.#stopping;
    }
    this.#setState('stopping');
    this.#stopController.abort();
    this.#wake?.fire(STOPPED);
    const loop = this.#loop ?? Promise.resolve();
    this.#stopping = loop.then(() => {
      this.#setState('stopped');
    });
    return this.#stopping;
  }

  /** Resolves once this lane has no active run and no backlog. */
  whenIdle(): Promise<void> {
    return this.#runs.whenIdle();
  }

  async #run(): Promise<void> {
    const stopSignal = this.#stopController.signal;
    while (!stopSignal.aborted) {
      if (this.#early === null && this.demand <= 0) {
        this.#setState('full');
        await this.#waitForSlot(stopSignal);
        continue;
      }
      await this.#claimCycle(stopSignal);
    }
    // Stopped with a claim sent from a wake and not yet taken by a cycle: its runs still start.
    await this.#takeEarly()?.catch(() => undefined);
  }

  /** One p-retry cycle: claims until a claim brings runs, backing off from empty and failed ones. */
  async #claimCycle(stopSignal: AbortSignal): Promise<void> {
    let wake = new BackoffWake();
    this.#wake = wake;
    try {
      if (this.#drained) {
        this.#drained = false;
        this.#setState('waiting');
        await interruptibleDelay(this.#backoff.minMs, wake);
        if (stopSignal.aborted) return;
        // Woken: claim now, with a fresh wake for the backoff that may follow.
        if (wake.aborted) this.#wake = wake = new BackoffWake();
      }
      await pRetry((attempt) => this.#takeEarly() ?? this.#claimOnce(attempt), {
        retries: Number.POSITIVE_INFINITY,
        factor: 2,
        minTimeout: this.#backoff.minMs,
        maxTimeout: this.#backoff.maxMs,
        randomize: true,
        signal: wake.asSignal(),
        onFailedAttempt: (context) => this.#onFailedAttempt(context),
      });
    } catch (error) {
      if (stopSignal.aborted || wake.aborted) return;
      // p-retry gave up on an error it does not retry; #claimOnce wraps them all, so this is a bug.
      this.#logger.error({ err: error }, 'lane claim cycle failed');
      await interruptibleDelay(this.#backoff.maxMs, stopSignal);
    } finally {
      this.#wake = null;
    }
  }

  #takeEarly(): Promise<void> | null {
    const early = this.#early;
    this.#early = null;
    return early;
  }

  async #claimOnce(attempt: number): Promise<void> {
    const demand = this.demand;
    if (demand <= 0) return; // full: the loop waits for a slot (or memory)
    this.#setState('claiming');
    this.#wakeRequested = false;
    this.#promised += demand;
    const request: ClaimRequest = { demand, queues: this.spec.queues };
    const memory = this.#memory;
    let promisedMb = 0;
    if (memory?.bounded === true) {
      request.memory = { freeMb: memory.freeMb, laneMb: memory.totalMb, defaultRunMb: memory.defaultRunMb };
      promisedMb = memory.freeMb;
      memory.promise(promisedMb);
    }
    const started = performance.now();
    let runs: readonly ClaimedRun[];
    try {
      runs = await this.#claimer.claim(request, this.#claimController.signal);
    } catch (error) {
      this.#promised -= demand;
      memory?.unpromise(promisedMb);
      this.#settled({ outcome: 'error', demand, runs: 0, attempt, durationMs: performance.now() - started, error });
      throw error instanceof LanesError ? error : new ClaimError(error);
    }
    // From here to the end of accept() nothing awaits, so no claim can see the slots twice.
    this.#promised -= demand;
    memory?.unpromise(promisedMb);
    this.#settled({ outcome: runs.length > 0 ? 'runs' : 'empty', demand, runs: runs.length, attempt, durationMs: performance.now() - started });
    if (runs.length === 0) {
      if (this.#wakeRequested && !this.#stopController.signal.aborted) {
        // work-available arrived while the server was answering: it may not have seen that work yet.
        this.#wakeRequested = false;
        return;
      }
      throw new EmptyClaimError();
    }
    this.#drained = runs.length < demand && !this.#wakeRequested;
    this.#runs.accept(runs, demand);
  }

  /** Cuts a backoff wait or a full wait short; during a claim, asks for one more claim. */
  #nudge(): void {
    if (this.#state === 'claiming') {
      this.#wakeRequested = true;
      return;
    }
    const wake = this.#wake;
    if (wake !== null && this.#state === 'waiting' && this.#early === null && this.demand > 0) {
      // Backing off with a free slot: claim now (this sends the claim before returning), and let
      // the backoff unwind behind it. A failure or empty reply is the next cycle's first attempt's.
      wake.fire(WOKEN);
      const early = this.#claimOnce(1);
      early.catch(() => undefined);
      this.#early = early;
      return;
    }
    wake?.fire(WOKEN);
    const waiter = this.#slotWaiter;
    this.#slotWaiter = null;
    waiter?.();
  }

  #waitForSlot(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        this.#slotWaiter = null;
        resolve();
      };
      if (signal.aborted) return resolve();
      this.#slotWaiter = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }

  #onFailedAttempt(context: RetryContext): void {
    const { error, attemptNumber } = context;
    if (error instanceof EmptyClaimError) {
      this.#logger.debug({ attempt: attemptNumber }, 'lane claim empty; backing off');
    } else {
      this.#logger.warn({ attempt: attemptNumber, err: error }, 'lane claim failed; backing off');
    }
    if (!this.#stopController.signal.aborted && this.#state === 'claiming') this.#setState('waiting');
  }

  #settled(event: Omit<ClaimSettled, 'lane'>): void {
    if (this.#onClaimSettled === undefined) return;
    try {
      this.#onClaimSettled({ lane: this.spec.id, ...event });
    } catch (error) {
      this.#logger.warn({ err: error }, 'claim listener threw');
    }
  }

  #setState(next: WorkloopState): void {
    const from = this.#state;
    // Repeated claims and repeated full waits are one state, not a change.
    if (from === next && (next === 'claiming' || next === 'full')) return;
    if (!WORKLOOP_TRANSITIONS[from].includes(next)) throw new WorkloopStateError(this.spec.id, from, next);
    this.#state = next;
    this.#logger.debug({ from, to: next }, 'lane state changed');
  }
}
