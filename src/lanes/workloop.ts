/**
 * One lane's claim loop (DESIGN.md, "lane"). A Workloop owns its capacity,
 * its active runs, the slots promised to the claim in flight and a backlog of
 * runs a misbehaving server handed over beyond the demand. It knows nothing of
 * phoenix or child processes: it takes a `Claimer` and a `RunStarter`
 * (`claimer.ts`); the runs it holds live in `LaneRuns` (`lane-runs.ts`), one
 * claim is sent by `sendClaim` (`lane-claim.ts`). What is left here is the
 * claim cycle: when to claim, when to back off, when to wait for a slot.
 *
 * States and transitions, kept in a `StateMachine` (the union, with the data
 * each state carries, is in `workloop-state.ts`; each change is logged at
 * debug; any other move throws `InvalidTransitionError`):
 *
 *   idle      created, not started                      → claiming | full | stopped
 *   claiming  one claim is in flight                    → claiming | waiting | full | stopping
 *   waiting   backing off after an empty/failed claim,  → claiming | full | stopping
 *             or for the minimum backoff after a short
 *             one (fewer runs than the demand: the
 *             queues are drained); work-available or
 *             one of this lane's finished runs cuts the
 *             wait short
 *   full      no free slot: no claim until one of this  → claiming | full | waiting | stopping
 *             lane's runs finishes (waiting first when
 *             the claim before it came back short)
 *   stopping  stop() was called: no new claim; the      → stopped
 *             claim in flight is awaited and its runs
 *             started (a claimed run is never dropped)
 *   stopped   the loop is over (a loop that crashed, a bug, ends here too);
 *             runs may still be active (the worker drains them)
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
import { StateMachine } from '../state-machine.ts';
import { interruptibleDelay, STOPPED, WOKEN } from './backoff-wake.ts';
import type { BackoffWake } from './backoff-wake.ts';
import { EmptyClaimError } from './claim-errors.ts';
import type { WorkloopOptions } from './claimer.ts';
import { newLaneClaim, sendClaim } from './lane-claim.ts';
import type { LaneClaimSender } from './lane-claim.ts';
import type { LaneMemory } from './lane-memory.ts';
import { LaneRuns } from './lane-runs.ts';
import type { LaneSpec } from './parse-workloops.ts';
import { WORKLOOP_TRANSITIONS, drainedBefore, laneClaimOf, rearm, stoppingState, takeEarly } from './workloop-state.ts';
import type { WorkloopState, WorkloopStateKind } from './workloop-state.ts';

/**
 * How long a lane waits before its next claim after a held claim that brought
 * fewer runs than it asked for (the server had no more): about the time the
 * runs it brought take to reach their first line of job code on an idle
 * worker, so that the claim does not compete with them. A run queued in that
 * moment waits for it at most (or for a work-available push, which the server
 * sends a lane that holds no claim).
 */
export const AFTER_SHORT_HELD_CLAIM_MS = 5;

export class Workloop {
  readonly spec: Readonly<LaneSpec>;
  readonly id: string;
  readonly capacity: number;
  readonly #backoff: Readonly<{ minMs: number; maxMs: number }>;
  readonly #logger: Logger;
  readonly #memory: LaneMemory | undefined;
  readonly #memoryClaims: () => boolean;
  readonly #sender: LaneClaimSender;
  readonly #state: StateMachine<WorkloopState>;
  readonly #runs: LaneRuns;
  /** Aborted by stop(): ends the loop and any backoff wait. */
  readonly #stopController = new AbortController();
  /** Aborted only by a forced stop: the claim in flight is given up. */
  readonly #claimController = new AbortController();

  constructor(options: WorkloopOptions) {
    this.spec = options.spec;
    this.id = options.spec.id;
    this.capacity = options.spec.capacity;
    this.#backoff = options.backoff;
    this.#logger = options.logger;
    this.#memory = options.memory;
    this.#memoryClaims = options.memoryClaims ?? (() => false);
    this.#sender = {
      spec: options.spec,
      claimer: options.claimer,
      memory: options.memory,
      signal: this.#claimController.signal,
      logger: options.logger,
      onClaimSettled: options.onClaimSettled,
    };
    this.#state = new StateMachine<WorkloopState>({
      name: `lane ${options.spec.id}`,
      initial: { kind: 'idle' },
      transitions: WORKLOOP_TRANSITIONS,
      logger: options.logger,
    });
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

  get state(): WorkloopStateKind {
    return this.#state.kind;
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
    return laneClaimOf(this.#state.current)?.promised ?? 0;
  }

  /** Runs the server handed over beyond the demand, waiting for a slot. */
  get backlogCount(): number {
    return this.#runs.backlogCount;
  }

  /** Slots a claim may ask for now. */
  get freeSlots(): number {
    return Math.max(0, this.spec.capacity - this.#runs.activeCount - this.promisedCount - this.#runs.backlogCount);
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
    if (this.#state.kind !== 'idle') return;
    void this.#run()
      .catch((error: unknown) => {
        // The loop catches everything it expects; reaching here is a bug, and the lane must say so.
        this.#logger.error({ err: error }, 'lane loop crashed');
      })
      .finally(() => this.#loopEnded());
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
    if (this.#memory?.bounded === true && this.#memory.freeMb <= 0 && this.#state.kind !== 'claiming') return;
    this.#nudge();
  }

  /**
   * Stops claiming. The claim in flight is awaited (unless `force`, which aborts
   * it) and its runs started; the returned promise is the one already in flight
   * on a second call. Active runs are not touched: see `whenIdle()`.
   */
  stop(options: { force?: boolean } = {}): Promise<void> {
    if (options.force === true) this.#claimController.abort(new LanesError('LANE_STOPPED', 'lane stopped'));
    const current = this.#state.current;
    if (current.kind === 'stopping') return current.done;
    if (current.kind === 'stopped') return Promise.resolve();
    this.#stopController.abort();
    if (current.kind === 'idle') {
      this.#state.to({ kind: 'stopped' });
      return Promise.resolve();
    }
    const stopping = this.#state.to(stoppingState(current.kind === 'claiming' ? current.claim : null));
    if (current.kind === 'full') current.wakeUp();
    else current.wake.fire(STOPPED);
    return stopping.done;
  }

  /** Resolves once this lane has no active run and no backlog. */
  whenIdle(): Promise<void> {
    return this.#runs.whenIdle();
  }

  async #run(): Promise<void> {
    const stopSignal = this.#stopController.signal;
    while (!stopSignal.aborted) {
      if ((laneClaimOf(this.#state.current)?.early ?? null) === null && this.demand <= 0) {
        await this.#waitForSlot();
        continue;
      }
      await this.#claimCycle(stopSignal);
    }
    // Stopped with a claim sent from a wake and not yet taken by a cycle: its runs still start.
    await takeEarly(this.#state)?.catch(() => undefined);
  }

  /** The loop is over: stopping ends; a loop that crashed (a bug) ends the lane too, so stop() does not wait for it. */
  #loopEnded(): void {
    const stopping = this.#state.when('stopping') ?? this.#state.to(stoppingState(null));
    this.#state.to({ kind: 'stopped' });
    stopping.finish();
  }

  /** One p-retry cycle: claims until a claim brings runs, backing off from empty and failed ones. */
  async #claimCycle(stopSignal: AbortSignal): Promise<void> {
    // A claim sent from a wake that already came back short: take it now, then wait as drained.
    const drained = drainedBefore(this.#state.current);
    const early = drained ? takeEarly(this.#state) : null;
    let wake = rearm(this.#state);
    try {
      if (drained) {
        this.#state.to({ kind: 'waiting', wake });
        await interruptibleDelay(this.#backoff.minMs, wake);
        if (stopSignal.aborted) return;
        // Woken: claim now, with a fresh wake for the backoff that may follow (a claim the wake sent takes it too).
        if (wake.aborted) wake = rearm(this.#state);
      }
      const cycleWake = wake;
      await pRetry((attempt) => (attempt === 1 ? early : null) ?? takeEarly(this.#state) ?? this.#claimOnce(attempt, cycleWake), {
        retries: Number.POSITIVE_INFINITY,
        factor: 2,
        minTimeout: this.#backoff.minMs,
        maxTimeout: this.#backoff.maxMs,
        randomize: true,
        signal: cycleWake.asSignal(),
        onFailedAttempt: (context) => this.#onFailedAttempt(context, cycleWake),
      });
    } catch (error) {
      if (stopSignal.aborted || wake.aborted) return;
      // p-retry gave up on an error it does not retry; #claimOnce wraps them all, so this is a bug.
      this.#logger.error({ err: error }, 'lane claim cycle failed');
      await interruptibleDelay(this.#backoff.maxMs, stopSignal);
    }
  }

  async #claimOnce(attempt: number, wake: BackoffWake): Promise<void> {
    const demand = this.demand;
    if (demand <= 0) return; // full: the loop waits for a slot (or memory)
    const claim = newLaneClaim(demand);
    this.#state.to({ kind: 'claiming', wake, claim });
    let brought = 0;
    await sendClaim(this.#sender, claim, attempt, (runs) => {
      brought = runs.length;
      if (brought === 0) return;
      claim.drained = brought < demand && !claim.wakeRequested;
      this.#runs.accept(runs, demand);
    });
    if (brought > 0) {
      // The next claim (this lane's slots may still be free) waits for the next turn of the event
      // loop: the runs just accepted go to the engine first. A held claim that came back short
      // found the queues empty, so its successor will only wait at the server: it goes out a
      // moment later, not while the worker and the server would handle it beside the runs just
      // taken, which need the cores to reach their first line of job code.
      const held = (this.#sender.claimer.holdMs?.({ demand, queues: this.spec.queues }) ?? 0) > 0;
      if (held && brought < demand) await interruptibleDelay(AFTER_SHORT_HELD_CLAIM_MS, wake);
      else await new Promise((resolve) => setImmediate(resolve));
      return;
    }
    // work-available arrived while the server was answering: it may not have seen that work yet.
    if (claim.wakeRequested && !this.#stopController.signal.aborted) return;
    throw new EmptyClaimError();
  }

  /** Cuts a backoff wait or a full wait short; during a claim, asks for one more claim. */
  #nudge(): void {
    const current = this.#state.current;
    if (current.kind === 'claiming') {
      current.claim.wakeRequested = true;
    } else if (current.kind === 'waiting') {
      current.wake.fire(WOKEN);
      // Backing off with a free slot: claim now (this sends the claim before returning), and let
      // the backoff unwind behind it. A failure or empty reply is the next cycle's first attempt's.
      if (this.demand <= 0) return;
      const early = this.#claimOnce(1, current.wake);
      early.catch(() => undefined);
      const claim = laneClaimOf(this.#state.current);
      if (claim !== null) claim.early = early;
    } else if (current.kind === 'full') {
      current.wakeUp();
    }
  }

  /** Waits, in state `full`, until a slot (or memory) frees or the lane stops. */
  #waitForSlot(): Promise<void> {
    const drained = drainedBefore(this.#state.current);
    return new Promise((wakeUp) => this.#state.to({ kind: 'full', wakeUp, drained }));
  }

  #onFailedAttempt(context: RetryContext, wake: BackoffWake): void {
    const { error, attemptNumber } = context;
    if (error instanceof EmptyClaimError) {
      this.#logger.debug({ attempt: attemptNumber }, 'lane claim empty; backing off');
    } else {
      this.#logger.warn({ attempt: attemptNumber, err: error }, 'lane claim failed; backing off');
    }
    if (this.#state.kind === 'claiming') this.#state.to({ kind: 'waiting', wake });
  }
}
