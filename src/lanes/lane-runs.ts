/**
 * The runs a lane holds: the active ones and a backlog of runs a misbehaving
 * server handed over beyond the demand (or that do not fit the lane's memory
 * yet). It starts each run, frees its slot and memory when the run ends,
 * starts the backlog's head when it fits, and tells the lane when a slot is
 * free so that it claims again.
 *
 * Invariant: active ≤ capacity whatever the server replies; a run starts only
 * when its memory reservation fits beside the runs held (a lane with nothing
 * running takes any run: it cannot get more room by waiting).
 */
import type { Logger } from 'pino';
import type { ClaimedRun } from '../protocol/messages.ts';
import type { RunStarter } from './claimer.ts';
import type { LaneMemory } from './lane-memory.ts';
import type { LaneSpec } from './parse-workloops.ts';

export interface LaneRunsOptions {
  spec: Readonly<LaneSpec>;
  startRun: RunStarter;
  logger: Logger;
  memory: LaneMemory | undefined;
  /** A run went to the backlog. Must not throw (a throw is logged and ignored). */
  onBacklogged: ((run: ClaimedRun) => void) | undefined;
  /** A run finished and no backlogged run took its slot: the lane may claim again. */
  onSlotFree: () => void;
}

export class LaneRuns {
  readonly #spec: Readonly<LaneSpec>;
  readonly #startRun: RunStarter;
  readonly #logger: Logger;
  readonly #memory: LaneMemory | undefined;
  readonly #onBacklogged: ((run: ClaimedRun) => void) | undefined;
  readonly #onSlotFree: () => void;
  readonly #active = new Map<string, ClaimedRun>();
  readonly #backlog: ClaimedRun[] = [];
  readonly #idleWaiters = new Set<() => void>();

  constructor(options: LaneRunsOptions) {
    this.#spec = options.spec;
    this.#startRun = options.startRun;
    this.#logger = options.logger;
    this.#memory = options.memory;
    this.#onBacklogged = options.onBacklogged;
    this.#onSlotFree = options.onSlotFree;
  }

  get activeCount(): number {
    return this.#active.size;
  }

  get activeRunIds(): string[] {
    return [...this.#active.keys()];
  }

  get backlogCount(): number {
    return this.#backlog.length;
  }

  /** Resolves once the lane has no active run and no backlog. */
  whenIdle(): Promise<void> {
    if (this.#active.size === 0 && this.#backlog.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.add(resolve));
  }

  /** Takes the runs of a claim for `demand` runs: each starts now, or waits in the backlog. Synchronous. */
  accept(runs: readonly ClaimedRun[], demand: number): void {
    if (runs.length > demand) {
      this.#logger.error({ demand, runs: runs.length, runIds: runs.map((run) => run.id) }, 'server gave more runs than the demand; extras wait for a slot');
    }
    for (const run of runs) {
      if (this.#active.has(run.id) || this.#backlog.some((queued) => queued.id === run.id)) {
        this.#logger.warn({ runId: run.id }, 'server gave a run this lane already holds');
        continue;
      }
      if (this.#active.size < this.#spec.capacity && this.#fits(run)) this.#launch(run);
      else {
        if (this.#active.size < this.#spec.capacity) this.#logger.warn({ runId: run.id, memoryMb: run.memory_mb }, 'claimed run does not fit the lane memory now; it waits for a run to finish');
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
      running = Promise.resolve(this.#startRun(run, this.#spec, memoryMb));
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
    this.#onSlotFree();
  }
}
