/**
 * One lane's share of the worker's memory (docs/memory.md): what its runs
 * hold now, run by run, and what is free. Only this lane reserves from it.
 *
 * A run reserves when its claim comes back and releases when its slot is
 * free. A claim in flight promises memory the way it promises slots: the
 * lane never asks for more than it has free.
 */
import { MIN_RUN_MEMORY_MB } from './memory-plan.ts';
import type { LaneMemoryPlan } from './memory-plan.ts';

export class LaneMemory {
  /** What the lane's runs may use together, in MB. */
  readonly totalMb: number;
  /** The need of a run whose plan declares none (the claim reply did not say). */
  readonly defaultRunMb: number;
  /** The largest run this lane takes. */
  readonly largestRunMb: number;
  /** Whether the worker has a ceiling: only then does memory gate claims. */
  readonly bounded: boolean;
  readonly #held = new Map<string, number>();
  #heldMb = 0;
  #promisedMb = 0;

  constructor(plan: Pick<LaneMemoryPlan, 'memoryMb' | 'defaultRunMb' | 'largestRunMb'>, bounded: boolean) {
    this.totalMb = plan.memoryMb;
    this.defaultRunMb = plan.defaultRunMb;
    this.largestRunMb = plan.largestRunMb;
    this.bounded = bounded;
  }

  /** Reserved by runs now, in MB. */
  get reservedMb(): number {
    return this.#heldMb;
  }

  /**
   * Not reserved by the lane's runs, in MB: what an operator calls free. A
   * claim in flight (one the server holds, `held_claims`, may wait for
   * minutes) is not counted: it only says what may come.
   */
  get unreservedMb(): number {
    return Math.max(0, this.totalMb - this.#heldMb);
  }

  /** Free for new runs now (claims in flight count as used), in MB. */
  get freeMb(): number {
    return Math.max(0, this.totalMb - this.#heldMb - this.#promisedMb);
  }

  /** What a run of this need reserves: its need, never more than the lane's largest run. */
  sizeOf(needMb: number | undefined): number {
    return Math.min(needMb ?? this.defaultRunMb, this.largestRunMb);
  }

  /**
   * How many runs a claim may ask for, given `freeSlots`. Without the
   * memory_claims extension each run is assumed to need the default; with it
   * the server packs runs into `freeMb`, so any free memory worth a run will do.
   */
  demand(freeSlots: number, memoryClaims: boolean): number {
    if (freeSlots <= 0) return 0;
    const free = this.freeMb;
    if (memoryClaims) return free >= MIN_RUN_MEMORY_MB ? freeSlots : 0;
    return Math.min(freeSlots, Math.floor(free / this.defaultRunMb));
  }

  /** Memory promised to the claim in flight (`promise`), given back when it settles (`unpromise`). */
  promise(mb: number): void {
    this.#promisedMb += mb;
  }

  unpromise(mb: number): void {
    this.#promisedMb = Math.max(0, this.#promisedMb - mb);
  }

  /** Whether a run of this size fits beside the runs held now. */
  fits(mb: number): boolean {
    return this.#heldMb + mb <= this.totalMb;
  }

  reserve(runId: string, mb: number): void {
    this.release(runId);
    this.#held.set(runId, mb);
    this.#heldMb += mb;
  }

  /** The memory a run holds, or undefined. */
  heldBy(runId: string): number | undefined {
    return this.#held.get(runId);
  }

  release(runId: string): void {
    const mb = this.#held.get(runId);
    if (mb === undefined) return;
    this.#held.delete(runId);
    this.#heldMb -= mb;
  }
}
