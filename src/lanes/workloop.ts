/**
 * One lane's claim loop (DESIGN.md, "lane"). A Workloop owns its capacity,
 * its active runs, the slots promised to the claim in flight and a backlog of
 * runs a misbehaving server handed over beyond the demand. It knows nothing of
 * phoenix or child processes: it takes a `Claimer` and a `RunStarter`.
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
import type { LaneMemory } from './lane-memory.ts';
import type { LaneSpec } from './parse-workloops.ts';

/** The reasons a backoff wait ends early with. Made once: they are not errors anyone sees. */
const WOKEN = Object.freeze(new Error('lane woken'));
const STOPPED = Object.freeze(new Error('lane stopped'));

/**
 * Ends one backoff wait early: the `signal` of one p-retry cycle (p-retry
 * duck-types signals: `aborted`, `reason`, `throwIfAborted` and the two
 * listener methods) and of the short wait after a drained claim.
 *
 * Not an AbortController, because a wake sits on the path from
 * work-available to the claim: aborting one dispatches through EventTarget,
 * about 70 µs on this path when the worker has been idle (measured on two
 * small cores), and `AbortSignal.any` to join it with the stop signal costs
 * another 25 µs. Here firing is a plain call of the one or two listeners.
 */
class BackoffWake {
  aborted = false;
  reason: unknown = undefined;
  #listeners: Array<() => void> = [];

  addEventListener(_type: 'abort', listener: () => void): void {
    this.#listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    this.#listeners = this.#listeners.filter((registered) => registered !== listener);
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  fire(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.#listeners;
    this.#listeners = [];
    for (const listener of listeners) listener();
  }

  /** This wake as p-retry's `signal` option, which is typed as an AbortSignal but only duck-typed. */
  asSignal(): AbortSignal {
    return this as unknown as AbortSignal;
  }
}

export type WorkloopState = 'idle' | 'claiming' | 'waiting' | 'full' | 'stopping' | 'stopped';

const TRANSITIONS: Record<WorkloopState, readonly WorkloopState[]> = {
  idle: ['claiming', 'full', 'stopped'],
  claiming: ['claiming', 'waiting', 'full', 'stopping'],
  waiting: ['claiming', 'full', 'stopping'],
  full: ['claiming', 'stopping'],
  stopping: ['stopped'],
  stopped: [],
};

/** What a lane asks for: at most `demand` runs from `queues` (ordered, `*` last). */
export interface ClaimRequest {
  demand: number;
  queues: readonly string[];
  /** The lane's memory, for a server that takes memory claims (sent only when the lane's memory is bounded). */
  memory?: ClaimMemory;
}

/** What a lane says about memory in a claim (protocol `memory_claims`), in MB. */
export interface ClaimMemory {
  /** Free now: the runs handed out must fit in it together. */
  freeMb: number;
  /** The lane's whole memory: a run needing more never fits this lane. */
  laneMb: number;
  /** The need of a run whose plan declares none. */
  defaultRunMb: number;
}

/** Something that claims runs for a lane (the worker's `worker:queue` channel, or a fake). */
export interface Claimer {
  /**
   * Resolves with the claimed runs (possibly none). Rejects when the claim
   * failed or timed out. `signal` is aborted only by a forced stop.
   */
  claim(request: ClaimRequest, signal: AbortSignal): Promise<readonly ClaimedRun[]>;
}

/**
 * Runs one claimed run to its end, reporting included. The returned promise
 * settles when the slot is free again; a rejection is logged, never rethrown.
 */
export type RunStarter = (run: ClaimedRun, lane: LaneSpec, memoryMb?: number) => Promise<void>;

export type ClaimOutcome = 'runs' | 'empty' | 'error';

/** Reported after every claim, for metrics and tests. */
export interface ClaimSettled {
  lane: string;
  outcome: ClaimOutcome;
  demand: number;
  runs: number;
  /** 1 for the first claim after a success, growing while claims come back empty or fail. */
  attempt: number;
  durationMs: number;
  error?: unknown;
}

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

/** An empty claim: a normal outcome that the loop backs off from. */
export class EmptyClaimError extends LanesError {
  constructor() {
    super('CLAIM_EMPTY', 'no work available');
  }
}

/** A claim that failed; wraps the cause so that p-retry retries it even when it was a TypeError. */
export class ClaimError extends LanesError {
  constructor(cause: unknown) {
    super('CLAIM_FAILED', `claim failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export class WorkloopStateError extends LanesError {
  constructor(lane: string, from: WorkloopState, to: WorkloopState) {
    super('INVALID_LANE_TRANSITION', `lane ${lane}: invalid transition ${from} → ${to}`);
  }
}

export class Workloop {
  readonly spec: Readonly<LaneSpec>;
  readonly #claimer: Claimer;
  readonly #startRun: RunStarter;
  readonly #backoff: Readonly<{ minMs: number; maxMs: number }>;
  readonly #logger: Logger;
  readonly #onClaimSettled: ((event: ClaimSettled) => void) | undefined;
  readonly #memory: LaneMemory | undefined;
  readonly #memoryClaims: () => boolean;
  readonly #onBacklogged: ((run: ClaimedRun) => void) | undefined;

  #state: WorkloopState = 'idle';
  readonly #active = new Map<string, ClaimedRun>();
  readonly #backlog: ClaimedRun[] = [];
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
  readonly #idleWaiters = new Set<() => void>();

  constructor(options: WorkloopOptions) {
    this.spec = options.spec;
    this.#claimer = options.claimer;
    this.#startRun = options.startRun;
    this.#backoff = options.backoff;
    this.#logger = options.logger;
    this.#onClaimSettled = options.onClaimSettled;
    this.#onBacklogged = options.onBacklogged;
    this.#memory = options.memory;
    this.#memoryClaims = options.memoryClaims ?? (() => false);
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
    return this.#active.size;
  }

  get activeRunIds(): string[] {
    return [...this.#active.keys()];
  }

  /** Slots promised to the claim in flight. */
  get promisedCount(): number {
    return this.#promised;
  }

  /** Runs the server handed over beyond the demand, waiting for a slot. */
  get backlogCount(): number {
    return this.#backlog.length;
  }

  /** Slots a claim may ask for now. */
  get freeSlots(): number {
    return Math.max(0, this.spec.capacity - this.#active.size - this.#promised - this.#backlog.length);
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
    if (this.spec.capacity - this.#active.size - this.#backlog.length <= 0) return;
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
    if (this.#active.size === 0 && this.#backlog.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.add(resolve));
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
    this.#accept(runs, demand);
  }

  #accept(runs: readonly ClaimedRun[], demand: number): void {
    if (runs.length > demand) {
      this.#logger.error({ demand, runs: runs.length, runIds: runs.map((run) => run.id) }, 'server gave more runs than the demand; extras wait for a slot');
    }
    for (const run of runs) {
      if (this.#active.has(run.id) || this.#backlog.some((queued) => queued.id === run.id)) {
        this.#logger.warn({ runId: run.id }, 'server gave a run this lane already holds');
        continue;
      }
      if (this.#active.size < this.spec.capacity && this.#fits(run)) this.#launch(run);
      else {
        if (this.#active.size < this.spec.capacity) this.#logger.warn({ runId: run.id, memoryMb: run.memory_mb }, 'claimed run does not fit the lane memory now; it waits for a run to finish');
        this.#backlog.push(run);
        try {
          this.#onBacklogged?.(run);
        } catch (error) {
          this.#logger.error({ err: error, runId: run.id }, 'backlog listener threw');
        }
      }
    }
  }

  /** Whether the run's memory fits beside the runs held; always, for a lane without a memory bound. */
  #fits(run: ClaimedRun): boolean {
    const memory = this.#memory;
    if (memory === undefined || !memory.bounded) return true;
    // A lane with nothing running takes any run: it cannot get more room by waiting.
    return this.#active.size === 0 || memory.fits(memory.sizeOf(run.memory_mb));
  }

  #launch(run: ClaimedRun): void {
    this.#active.set(run.id, run);
    const memory = this.#memory;
    let memoryMb: number | undefined;
    if (memory !== undefined) {
      memoryMb = memory.sizeOf(run.memory_mb);
      memory.reserve(run.id, memoryMb);
    }
    this.#logger.debug({ runId: run.id, active: this.#active.size, memoryMb }, 'lane run started');
    let running: Promise<void>;
    try {
      running = Promise.resolve(this.#startRun(run, this.spec, memoryMb));
    } catch (error) {
      running = Promise.reject(error);
    }
    running
      .catch((error: unknown) => {
        this.#logger.error({ err: error, runId: run.id }, 'lane run failed to report');
      })
      .finally(() => this.#finished(run));
  }

  #finished(run: ClaimedRun): void {
    this.#active.delete(run.id);
    this.#memory?.release(run.id);
    this.#logger.debug({ runId: run.id, active: this.#active.size }, 'lane run finished');
    const next = this.#backlog[0];
    if (next !== undefined && this.#fits(next)) {
      this.#backlog.shift();
      this.#launch(next);
      return;
    }
    if (next !== undefined) return; // the backlog's head waits for more memory: a later finish starts it
    if (this.#active.size === 0) {
      for (const resolve of this.#idleWaiters) resolve();
      this.#idleWaiters.clear();
    }
    // A slot of this lane is free: claim at once. Other lanes are not told.
    if (!this.#stopController.signal.aborted) this.#nudge();
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
    if (!TRANSITIONS[from].includes(next)) throw new WorkloopStateError(this.spec.id, from, next);
    this.#state = next;
    this.#logger.debug({ from, to: next }, 'lane state changed');
  }
}

/** What can end a delay early: an AbortSignal, or a lane's BackoffWake. */
interface Interrupt {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Resolves after `ms`, or as soon as `interrupt` fires. */
function interruptibleDelay(ms: number, interrupt: Interrupt): Promise<void> {
  return new Promise((resolve) => {
    if (interrupt.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      interrupt.removeEventListener('abort', done);
      resolve();
    }
    interrupt.addEventListener('abort', done);
  });
}
