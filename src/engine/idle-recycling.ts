/**
 * When an idle child is recycled for its memory (docs/memory.md): a
 * long-lived process slowly keeps memory (code caches, fragmentation, adaptor
 * modules of past spares), so a child whose idle RSS passes a limit, or grows
 * past its own first settled idle RSS by more than a margin, is replaced.
 */
import type { PooledChild } from './pooled-child.ts';

const MB = 1024 * 1024;

export interface IdleRecyclingOptions {
  maxIdleChildRssMb: number;
  maxIdleChildGrowthMb: number;
  /** With warm spares, only a child whose next spare has booted is compared with its baseline. */
  warmSpares: boolean;
}

/** Why to recycle a child: the log line's fields and message. */
export interface RecycleVerdict {
  fields: Record<string, unknown>;
  message: string;
}

export class IdleRecycling {
  readonly #options: IdleRecyclingOptions;
  /** Each child's first settled idle RSS, after its first run: what later growth is measured against. */
  readonly #idleBaselines = new WeakMap<PooledChild, number>();

  constructor(options: IdleRecyclingOptions) {
    this.#options = options;
  }

  /** Judges an idle child's sampled RSS: a verdict when it must go, else undefined (its baseline noted the first time). */
  judge(child: PooledChild, idleRss: number): RecycleVerdict | undefined {
    const o = this.#options;
    if (idleRss > o.maxIdleChildRssMb * MB) {
      return { fields: { rssMb: Math.round(idleRss / MB), limitMb: o.maxIdleChildRssMb }, message: 'recycling pooled child over its idle memory limit' };
    }
    // Only a settled child (its next spare booted) is comparable with its baseline.
    if (o.warmSpares && !child.spareReady) return undefined;
    const baseline = this.#idleBaselines.get(child);
    if (baseline === undefined) this.#idleBaselines.set(child, idleRss);
    else if (idleRss > baseline + o.maxIdleChildGrowthMb * MB) {
      return { fields: { rssMb: Math.round(idleRss / MB), baselineMb: Math.round(baseline / MB) }, message: 'recycling pooled child grown past its idle baseline' };
    }
    return undefined;
  }
}
